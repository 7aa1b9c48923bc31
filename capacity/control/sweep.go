package control

import (
	"context"
	"errors"
	"time"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
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
// publications). A drop that fails (the source unreachable) is tried
// again at the next sweep, and the source endpoint cannot be deleted
// meanwhile: its credentials are what the drop needs.
func (s *Server) SweepDrops(ctx context.Context) error {
	drops, err := s.Store.SourceDrops(ctx)
	if err != nil {
		return err
	}
	for _, d := range drops {
		ep, err := s.endpoint(ctx, d.SourceEndpointArn)
		if err == nil {
			err = task.DropSource(ctx, &task.Task{ReplicationConfigIdentifier: d.ReplicationConfigIdentifier, SourceEndpoint: ep})
		}
		if err != nil {
			if s.runs.dropFailed(d.ConfigArn, dropRetryWarn) {
				s.Log.Warn("could not drop the replication slot and publications a deleted replication config left on its source; trying again",
					"replication", d.ReplicationConfigIdentifier, "source_endpoint", d.SourceEndpointArn, "error", err)
			}
			continue
		}
		if err := s.Store.SourceDropped(ctx, d); err != nil {
			return err
		}
		s.Log.Info("dropped what a deleted replication config left on its source", "replication", d.ReplicationConfigIdentifier, "source_endpoint", d.SourceEndpointArn)
	}
	return nil
}
