package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
)

// Start begins replication arn's start chain (api.Control). The API has
// moved the status to initializing; the chain runs under Run's context, not
// the request's, and Start returns once Run has taken it.
func (s *Server) Start(ctx context.Context, arn string) error {
	select {
	case s.starts <- arn:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("start replication %s: the control loop did not take the start: %w", arn, ctx.Err())
	}
}

// Stop asks arn's replicator to stop gracefully (api.Control); its exit
// report records the end. A start chain under way sees the stopping status
// at its next step.
func (s *Server) Stop(ctx context.Context, arn string) error {
	return s.Launcher.Stop(ctx, arn)
}

// Reload stops arn's replicator gracefully, its position committed
// (api.Control); when its exit is reported it is launched again with the
// request in its task, reloads the tables, and goes on from there.
func (s *Server) Reload(ctx context.Context, arn string) error {
	s.runs.restart(arn)
	if err := s.Launcher.Stop(ctx, arn); err != nil {
		s.runs.takeRestart(arn)
		return err
	}
	return nil
}

// begin runs arn's start chain in the background, under work.
func (s *Server) begin(work context.Context, arn string) {
	s.chains.Go(func() {
		ctx, cancel := context.WithTimeout(work, chainTimeout)
		defer cancel()
		s.start(ctx, arn)
	})
}

// errStopped ends a start chain whose replication was stopped meanwhile.
var errStopped = errors.New("stopped while starting")

// step takes the start chain's next step from the status the previous one
// left, unless the replication was stopped meanwhile.
func (s *Server) step(ctx context.Context, arn string, from store.Status, edit func(*store.ReplicationRecord)) error {
	_, err := s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		if rep.Status != from {
			return fmt.Errorf("%w: status is %s, not %s", errStopped, rep.Status, from)
		}
		to, err := lifecycle.Next(from, lifecycle.Step)
		if err != nil {
			return err
		}
		rep.Status = to
		rep.ReplicationUpdateTime = store.At(time.Now())
		if edit != nil {
			edit(rep)
		}
		return nil
	})
	return err
}

// start runs the chain and records how it ended when no replicator took
// over: stopped when a stop came first, failed with the cause otherwise.
func (s *Server) start(ctx context.Context, arn string) {
	err := s.chain(ctx, arn)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// The server is going away: the next one starts it over (Adopt).
		s.Log.Warn("a start was cut short; the next server starts it over", "replication", arn, "error", err)
	case errors.Is(err, errStopped):
		// Stopped before a replicator ran: nothing to wait for.
		_, _ = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if rep.Status != store.StatusStopping {
				return errStopped
			}
			return s.end(rep, lifecycle.StopNormal, "")
		})
	default:
		s.Log.Warn("replication failed to start", "replication", arn, "error", err)
		_, _ = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if err := s.end(rep, lifecycle.StopFatal, err.Error()); err != nil {
				return err
			}
			var cf *checkFailed
			if errors.As(err, &cf) {
				rep.FailureMessages = cf.problems
			}
			return nil
		})
	}
}

// checkFailed is a pre-migration check that found problems, each reported
// as a failure message of its own.
type checkFailed struct{ problems []string }

func (c *checkFailed) Error() string {
	return "the source is not ready for change capture: " + strings.Join(c.problems, "; ")
}

// chain walks a start from initializing to replication_starting: the task
// document, the connection tests and the pre-migration check, the analysis
// and the plan, then the launch.
func (s *Server) chain(ctx context.Context, arn string) error {
	if err := s.step(ctx, arn, store.StatusInitializing, nil); err != nil {
		return err
	}
	t, cfg, err := s.task(ctx, arn)
	if err != nil {
		return err
	}
	if err := s.step(ctx, arn, store.StatusPreparingMetadata, nil); err != nil {
		return err
	}
	if err := testConnections(ctx, t); err != nil {
		return err
	}
	if problems := check(ctx, t, s.Log); len(problems) > 0 {
		return &checkFailed{problems}
	}
	if err := s.step(ctx, arn, store.StatusTestingConnection, nil); err != nil {
		return err
	}
	if err := s.step(ctx, arn, store.StatusFetchingMetadata, nil); err != nil {
		return err
	}
	plan, doc, err := s.size(ctx, t, cfg)
	if err != nil {
		return err
	}
	if err := s.step(ctx, arn, store.StatusCalculatingCap, func(rep *store.ReplicationRecord) {
		rep.ProvisionData = &store.ProvisionData{ProvisionState: store.Provisioning, ReasonForNewProvisioningData: plan.Reason}
	}); err != nil {
		return err
	}
	if err := s.step(ctx, arn, store.StatusProvisioningCap, func(rep *store.ReplicationRecord) {
		rep.ProvisionData = &store.ProvisionData{
			ProvisionState: store.Provisioned, ProvisionedCapacityUnits: plan.Units, DateProvisioned: store.At(time.Now()),
			ReasonForNewProvisioningData: plan.Reason,
		}
	}); err != nil {
		return err
	}
	rep, err := s.Store.Replication(ctx, arn)
	if err != nil {
		return err
	}
	if err := s.carry(ctx, arn, rep.StartReplicationType == store.StartResume); err != nil {
		return err
	}
	if err := s.launch(ctx, arn, doc, plan); err != nil {
		return err
	}
	// A stop that came between the last step and the launch found nothing
	// to stop: stop the replicator now.
	if rep, err := s.Store.Replication(ctx, arn); err == nil && rep.Status == store.StatusStopping {
		return s.Launcher.Stop(ctx, arn)
	}
	return nil
}

// end records the end of a run as lifecycle allows it: stopped, or failed
// with failure; the capacity it held stays until the deprovision timer
// (a quick restart keeps it) or is released at once.
func (s *Server) end(rep *store.ReplicationRecord, reason, failure string) error {
	ev := lifecycle.End
	if failure != "" {
		ev = lifecycle.Fail
	}
	to, err := lifecycle.Next(rep.Status, ev)
	if err != nil {
		return err
	}
	now := store.At(time.Now())
	rep.Status = to
	rep.FailureMessages = nil
	if failure != "" {
		rep.FailureMessages = []string{failure}
	}
	rep.StopReason = reason
	rep.CDCLatencyTarget = 0
	rep.ReplicationUpdateTime, rep.ReplicationLastStopTime = now, now
	if rep.ReplicationStats != nil {
		rep.ReplicationStats.StopDate = now
	}
	if pd := rep.ProvisionData; pd != nil && pd.ProvisionState == store.Provisioned && s.DeprovisionAfter > 0 {
		// The capacity stays for a quick restart until the timer (kept
		// with the record in Redis) is due; Sweep releases it then.
		rep.ReplicationDeprovisionTime = store.At(now.Add(s.DeprovisionAfter))
		return nil
	}
	if rep.ProvisionData != nil {
		rep.ProvisionData.ProvisionState = store.Deprovisioned
		rep.ProvisionData.ProvisionedCapacityUnits = 0
	}
	rep.ReplicationDeprovisionTime = now
	return nil
}
