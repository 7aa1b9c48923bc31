package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

// errClaimed ends a sweep's claim on a timer another sweeper (or a new
// start) got to first.
var errClaimed = errors.New("claimed elsewhere")

// Sweep releases the capacity of the replications whose deprovision time
// has come. The claim is a compare-and-set on each record, so sweepers
// running at once (several servers, or a scheduled function) release each
// once.
func (s *Server) Sweep(ctx context.Context) error {
	now := time.Now()
	due, err := s.Store.DueDeprovisions(ctx, now)
	if err != nil {
		return err
	}
	for _, arn := range due {
		_, err := s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			pd := rep.ProvisionData
			if pd == nil || pd.ProvisionState != store.Provisioned || rep.ReplicationDeprovisionTime == nil || rep.ReplicationDeprovisionTime.After(now) ||
				(rep.Status != store.StatusStopped && rep.Status != store.StatusFailed) {
				return errClaimed
			}
			pd.ProvisionState = store.Deprovisioning
			return nil
		})
		if errors.Is(err, errClaimed) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		// A replicator holds nothing once it has exited: the release is
		// the record's.
		_, err = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if rep.ProvisionData == nil || rep.ProvisionData.ProvisionState != store.Deprovisioning {
				return errClaimed
			}
			rep.ProvisionData.ProvisionState = store.Deprovisioned
			rep.ProvisionData.ProvisionedCapacityUnits = 0
			rep.ReplicationUpdateTime = store.At(time.Now())
			return nil
		})
		if err != nil && !errors.Is(err, errClaimed) {
			return err
		}
		s.Log.Info("capacity released", "replication", arn)
	}
	return nil
}

// SweepLeases launches a new replicator for each running replication
// whose replicator stopped renewing its lease (it died, froze, or lost
// Redis). Claiming a lapsed lease is atomic, so of several sweepers one
// relaunches it; the new replicator's fencing token keeps the old one, if
// it wakes up, from writing.
func (s *Server) SweepLeases(ctx context.Context) error {
	lapsed, err := s.Store.LapsedLeases(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, arn := range lapsed {
		rep, err := s.Store.Replication(ctx, arn)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !lifecycle.Live(rep.Status) {
			continue
		}
		s.Log.Warn("the replicator's lease lapsed; launching a new one from the checkpoint", "replication", rep.ReplicationConfigIdentifier)
		if err := s.relaunch(ctx, arn); err != nil {
			return err
		}
	}
	return nil
}

// Consume carries out what an API without replicators of its own (the
// Lambda function) queued: starts, table reloads and stops, each claimed
// from its queue so that one server does it. Starts run under work.
func (s *Server) Consume(ctx, work context.Context) error {
	start := func(_ context.Context, arn string) error { s.begin(work, arn); return nil }
	for _, q := range []struct {
		name string
		do   func(context.Context, string) error
	}{{store.QueueStops, s.Stop}, {store.QueueReloads, s.Reload}, {store.QueueStarts, start}} {
		arns, err := s.Store.Queued(ctx, q.name)
		if err != nil {
			return err
		}
		for _, arn := range arns {
			if ok, err := s.Store.Dequeue(ctx, q.name, arn); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			s.Log.Info("carrying out a queued request", "queue", q.name, "replication", arn)
			if err := q.do(ctx, arn); err != nil {
				s.Log.Warn("a queued request failed", "queue", q.name, "replication", arn, "error", err)
			}
		}
	}
	return nil
}

// dropRetryWarn is how often a drop that keeps failing is logged.
const dropRetryWarn = time.Minute

// SweepDrops drops what deleted replication configs left on their sources
// (PostgreSQL's slot, which holds WAL until it is dropped, and the
// publications), with the source endpoint as it was at the deletion. A
// drop that fails (the source unreachable) is tried again at the next
// sweep.
func (s *Server) SweepDrops(ctx context.Context) error {
	drops, err := s.Store.SourceDrops(ctx)
	if err != nil {
		return err
	}
	for _, d := range drops {
		ep, err := s.endpointOf(ctx, &d.Source)
		if err == nil {
			err = task.DropSource(ctx, &task.Task{ReplicationConfigIdentifier: d.ReplicationConfigIdentifier, SourceEndpoint: ep})
		}
		if err != nil {
			if s.runs.dropFailed(d.ConfigArn, dropRetryWarn) {
				s.Log.Warn("could not drop the replication slot and publications a deleted replication config left on its source; trying again",
					"replication", d.ReplicationConfigIdentifier, "source_endpoint", d.Source.EndpointIdentifier, "error", err)
			}
			continue
		}
		if err := s.Store.SourceDropped(ctx, d); err != nil {
			return err
		}
		s.Log.Info("dropped what a deleted replication config left on its source", "replication", d.ReplicationConfigIdentifier, "source_endpoint", d.Source.EndpointIdentifier)
	}
	return nil
}

// retentionWarning starts the FailureMessages line the retention sweep
// owns: it replaces it at each sweep and removes it when it no longer
// applies.
const retentionWarning = "Warning: the source's replication slot "

// SweepRetention measures the WAL each replication's slot holds on its
// PostgreSQL source, running or stopped (a stopped replication's slot
// holds WAL too, until it is resumed or its config deleted), records it
// in ReplicationStats.SourceRetainedWalBytes, and says in FailureMessages
// when it passes SluiceSettings.WalRetentionWarningMB (or half the
// source's max_slot_wal_keep_size), or when the source has invalidated
// the slot.
func (s *Server) SweepRetention(ctx context.Context) error {
	reps, err := s.Store.Replications(ctx)
	if err != nil {
		return err
	}
	for _, rep := range reps {
		if rep.Runs == 0 || rep.ReplicationType == runtime.FullLoad {
			continue // no slot was made
		}
		t, cfg, err := s.task(ctx, rep.ReplicationConfigArn)
		if err != nil {
			continue // deleted meanwhile, or its endpoint unreadable: the start says why
		}
		ret, err := task.SourceRetention(ctx, t)
		if err != nil {
			if s.runs.dropFailed("retention "+rep.ReplicationConfigArn, dropRetryWarn) {
				s.Log.Warn("could not measure the WAL the replication's slot holds on its source", "replication", rep.ReplicationConfigIdentifier, "error", err)
			}
			continue
		}
		warning := retentionMessage(ret, cfg.ReplicationSettings)
		_, err = s.Store.UpdateReplication(ctx, rep.ReplicationConfigArn, func(rep *store.ReplicationRecord) error {
			var held int64
			if ret != nil {
				held = ret.Bytes
			}
			if rep.ReplicationStats == nil {
				rep.ReplicationStats = &store.ReplicationStats{}
			}
			rep.ReplicationStats.SourceRetainedWalBytes = held
			msgs := rep.FailureMessages[:0:0]
			for _, m := range rep.FailureMessages {
				if !strings.HasPrefix(m, retentionWarning) {
					msgs = append(msgs, m)
				}
			}
			if warning != "" {
				msgs = append(msgs, warning)
			}
			rep.FailureMessages = msgs
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// retentionMessage is the warning for what a slot holds, "" when none is
// due.
func retentionMessage(ret *task.Retention, settings string) string {
	if ret == nil {
		return ""
	}
	if ret.Lost {
		return retentionWarning + ret.Slot + " was invalidated by the source (wal_status lost: it held more than max_slot_wal_keep_size): the changes since the last checkpoint are gone, so the replication cannot resume; start it with reload-target"
	}
	set, err := runtime.ParseSettings([]byte(settings))
	if err != nil {
		return ""
	}
	limit := set.SluiceSettings.WalRetentionWarningMB << 20
	if ret.KeepBytes > 0 {
		limit = min(limit, ret.KeepBytes/2)
	}
	if ret.Bytes <= limit {
		return ""
	}
	return fmt.Sprintf("%s%s holds %s of WAL (warning above %s): the source cannot recycle it until the replication reads past it; resume the replication, or delete its config to drop the slot", retentionWarning, ret.Slot, sizeText(ret.Bytes), sizeText(limit))
}

// sizeText is n bytes in MiB or GiB.
func sizeText(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
