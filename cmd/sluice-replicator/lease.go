package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

// A replicator launched by the control plane (SLUICE_REDIS_URL and
// SLUICE_REPLICATION_ARN set) holds its replication's lease while it runs:
// it takes it before touching anything, renews it every third of
// SLUICE_LEASE_TTL, and stops when it loses it. The lease's fencing token
// goes with every target commit (task.Task.Fence).

// errLeaseLost is the cause of a run stopped because the lease was lost.
var errLeaseLost = errors.New("lost the replication's lease: another replicator takes over, so this one stops")

// control is the replicator's link to the control plane.
type control struct {
	st     *store.Store
	arn    string
	ttl    time.Duration
	holder string
	token  int64
	log    *slog.Logger
}

// controlFromEnv connects to the control plane's Redis, or returns nil
// when the replicator runs standalone.
func controlFromEnv(ctx context.Context, log *slog.Logger) (*control, error) {
	url, arn := os.Getenv("SLUICE_REDIS_URL"), os.Getenv("SLUICE_REPLICATION_ARN")
	if url == "" && arn == "" {
		return nil, nil
	}
	if url == "" || arn == "" {
		return nil, errors.New("SLUICE_REDIS_URL and SLUICE_REPLICATION_ARN go together: set both (launched by the control plane) or neither (standalone)")
	}
	ttl := 15 * time.Second
	if v := os.Getenv("SLUICE_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("SLUICE_LEASE_TTL %q is not a duration of at least 1s, like 15s", v)
		}
		ttl = d
	}
	st, err := store.Open(ctx, url, "sluice")
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &control{st: st, arn: arn, ttl: ttl, holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)), log: log}, nil
}

// takeTask reads the sealed task document a launcher left in Redis, with
// the one-time key in SLUICE_TASK_KEY.
func (c *control) takeTask(ctx context.Context) ([]byte, error) {
	if c == nil {
		return nil, errors.New("-task redis needs SLUICE_REDIS_URL and SLUICE_REPLICATION_ARN")
	}
	box, err := secrets.NewBox(os.Getenv("SLUICE_TASK_KEY"))
	if err != nil {
		return nil, fmt.Errorf("SLUICE_TASK_KEY: %w", err)
	}
	sealed, err := c.st.TakeHandoff(ctx, c.arn)
	if err != nil {
		return nil, err
	}
	doc, err := box.Open(sealed, c.arn)
	if err != nil {
		return nil, fmt.Errorf("open the task document with SLUICE_TASK_KEY: %w", err)
	}
	return []byte(doc), nil
}

// acquire takes the lease, waiting while a predecessor still holds it
// (one stopping gracefully releases it; a dead one's lapses within the TTL).
func (c *control) acquire(ctx context.Context) error {
	deadline := time.Now().Add(2*c.ttl + 5*time.Second)
	for {
		tok, err := c.st.AcquireLease(ctx, c.arn, c.holder, c.ttl)
		if err == nil {
			c.token = tok
			c.log.Info("lease taken", "replication", c.arn, "fencing_token", tok, "ttl", c.ttl)
			return nil
		}
		if !errors.Is(err, store.ErrLeaseHeld) || time.Now().After(deadline) {
			return fmt.Errorf("take the lease of replication %s: %w", c.arn, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// hold renews the lease until ctx ends, and cancels the run with
// errLeaseLost when the lease is gone or could not be renewed before it
// lapsed.
func (c *control) hold(ctx context.Context, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(c.ttl / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := c.st.RenewLease(ctx, c.arn, c.holder, c.token, c.ttl)
		switch {
		case err == nil:
			renewed = time.Now()
		case errors.Is(err, store.ErrLeaseLost):
			c.log.Error("lease lost", "replication", c.arn, "fencing_token", c.token)
			cancel(errLeaseLost)
			return
		case ctx.Err() != nil:
			return
		case time.Since(renewed) >= c.ttl:
			c.log.Error("lease not renewed in time", "replication", c.arn, "error", err)
			cancel(errLeaseLost)
			return
		default:
			c.log.Warn("lease renewal failed; trying again", "replication", c.arn, "error", err)
		}
	}
}

// release hands the lease back and records why the run ended.
func (c *control) release(runErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if runErr != nil {
		_ = c.st.PutReplicatorExit(ctx, c.arn, runErr.Error())
	}
	if c.token != 0 {
		_ = c.st.ReleaseLease(ctx, c.arn, c.holder, c.token)
	}
	_ = c.st.Close()
}

// putStats publishes the statistics for launchers that cannot read the
// stats file (ECS).
func (c *control) putStats(doc []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.st.PutReplicatorStats(ctx, c.arn, doc, 3*c.ttl)
}
