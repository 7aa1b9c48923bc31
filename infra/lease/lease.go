// Package lease is a replicator's link to the control plane when one
// launched it: the sealed task document it takes once, the lease it holds
// while it runs (its fencing token goes with every target commit), the
// statistics it publishes for launchers that cannot read its stats file
// (ECS), and why it ended. All of it is in the control plane's Redis; a
// standalone replicator has no link.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

// A replicator launched by the control plane (SLUICE_REDIS_URL and
// SLUICE_REPLICATION_ARN set) holds its replication's lease while it runs:
// it takes it before touching anything, renews it every third of
// SLUICE_LEASE_TTL, and stops when it loses it.

// ErrLost is the cause of a run stopped because the lease was lost.
var ErrLost = errors.New("lost the replication's lease: another replicator takes over, so this one stops")

// Link is the replicator's link to the control plane.
type Link struct {
	st     *store.Store
	arn    string
	ttl    time.Duration
	holder string
	token  int64
	log    *slog.Logger
}

// FromEnv connects to the control plane's Redis, or returns nil when the
// replicator runs standalone. The variables are the launchers' contract
// with the replicator (infra/process, infra/ecs).
func FromEnv(ctx context.Context, log *slog.Logger) (*Link, error) {
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
	// The launcher names the holder, so that it can release the lease of
	// a replicator it saw die; one started by hand gets a name of its own.
	holder := os.Getenv(launch.HolderEnv)
	if holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return &Link{st: st, arn: arn, ttl: ttl, holder: holder, log: log}, nil
}

// TakeTask reads the sealed task document a launcher left in Redis, with
// the one-time key in SLUICE_TASK_KEY.
func (c *Link) TakeTask(ctx context.Context) ([]byte, error) {
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

// Acquire takes the lease, waiting while a predecessor still holds it
// (one stopping gracefully releases it; a dead one's lapses within the TTL).
func (c *Link) Acquire(ctx context.Context) error {
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

// Hold renews the lease until ctx ends, and cancels the run with
// ErrLost when the lease is gone or could not be renewed before it
// lapsed.
func (c *Link) Hold(ctx context.Context, cancel context.CancelCauseFunc) {
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
			cancel(ErrLost)
			return
		case ctx.Err() != nil:
			return
		case time.Since(renewed) >= c.ttl:
			c.log.Error("lease not renewed in time", "replication", c.arn, "error", err)
			cancel(ErrLost)
			return
		default:
			c.log.Warn("lease renewal failed; trying again", "replication", c.arn, "error", err)
		}
	}
}

// Release hands the lease back and records why the run ended.
func (c *Link) Release(runErr error) {
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

// PutStats publishes the statistics for launchers that cannot read the
// stats file (ECS).
func (c *Link) PutStats(doc []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.st.PutReplicatorStats(ctx, c.arn, doc, 3*c.ttl)
}

// Token is the lease's fencing token, once Acquire took it.
func (c *Link) Token() int64 { return c.token }

// Publish writes the statistics document doc makes every second, to
// statsFile (the local launcher reads it) and to the link (the ECS
// launcher reads Redis), until the returned stop is called, which writes
// it once more: the last report carries the final counts. Either may be
// absent.
func Publish(statsFile string, link *Link, doc func() ([]byte, error)) (stop func()) {
	publish := func() {
		b, err := doc()
		if err != nil {
			return
		}
		if statsFile != "" {
			writeFile(statsFile, b)
		}
		if link != nil {
			link.PutStats(b)
		}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				publish()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		publish()
	}
}

// writeFile replaces the stats file atomically, so readers never see half.
func writeFile(path string, b []byte) {
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}
