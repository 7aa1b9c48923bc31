package control

import (
	"context"
	"strings"
	"time"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
)

// report is a launcher's report with the replicator's statistics read.
type report struct {
	launch.Report
	stats *runtime.Snapshot
}

// report records what a replicator reported: its statistics (carried over
// from the runs before), its status, and, when it exited, how the run
// ended or whether it goes on in a new replicator.
func (s *Server) report(ctx context.Context, rp report) error {
	if rp.stats != nil {
		base, err := s.base(ctx, rp.ID)
		if err != nil {
			return err
		}
		rp.stats = carried(rp.stats, base)
		if err := s.Store.PutTableStats(ctx, rp.ID, tableStats(rp.stats)); err != nil {
			return err
		}
	}
	var stopAt, again bool
	restart := rp.Exited && rp.ExitErr == "" && s.runs.takeRestart(rp.ID)
	updated, err := s.Store.UpdateReplication(ctx, rp.ID, func(rep *store.ReplicationRecord) error {
		now := time.Now()
		if rp.stats != nil {
			progress(rep, rp.stats, now)
		}
		if rp.Exited {
			again = s.exited(rep, rp, restart, now)
			return nil
		}
		if rp.stats != nil {
			if to, err := lifecycle.Next(rep.Status, lifecycle.Report); err == nil && to != rep.Status {
				rep.Status = to
				rep.ReplicationUpdateTime = store.At(now)
			}
		}
		if rep.Status == store.StatusRunning && stopTimeReached(rep, now) {
			rep.Status = store.StatusStopping
			stopAt = true
		}
		return nil
	})
	if rp.Exited && !again {
		s.runs.ended(rp.ID)
		if s.Scaler != nil {
			s.Scaler.Forget(rp.ID)
		}
	}
	switch {
	case err != nil:
		return err
	case stopAt:
		return s.Launcher.Stop(ctx, rp.ID)
	case !rp.Exited && rp.stats != nil:
		return s.autoscale(ctx, updated, rp.stats)
	case again && rp.Killed:
		return s.replaceKilled(ctx, rp.ID, rp.Holder)
	case again:
		return s.relaunch(ctx, rp.ID)
	}
	return nil
}

// replaceKilled launches a new replicator at once for one the launcher saw
// killed: its lease, still held in its name, is released first (it is
// dead, so nothing of it can commit again; fencing would stop it if it
// could). A lease someone else took meanwhile is left to them.
func (s *Server) replaceKilled(ctx context.Context, arn, holder string) error {
	cur, token, err := s.Store.LeaseHolder(ctx, arn)
	if err != nil {
		return err
	}
	switch cur {
	case holder:
		if err := s.Store.ReleaseLease(ctx, arn, holder, token); err != nil {
			return err
		}
	case "":
	default:
		s.Log.Info("a killed replicator was already replaced", "replication", arn, "holder", cur)
		return nil
	}
	return s.relaunch(ctx, arn)
}

// exited records a replicator's exit in rep and says whether the
// replication goes on in a new replicator.
func (s *Server) exited(rep *store.ReplicationRecord, rp report, restart bool, now time.Time) (again bool) {
	end := func(reason, failure string) {
		if err := s.end(rep, reason, failure); err != nil {
			s.Log.Warn("a replicator's exit does not end its replication", "replication", rp.ID, "error", err)
		}
	}
	live := lifecycle.Live(rep.Status)
	switch {
	case restart && rep.Status == store.StatusRunning:
		return true
	case s.detached.Load() && rp.ExitErr == "" && rep.Status != store.StatusStopping:
		// Stopped with the server; the next one adopts it.
	case rp.Killed && live && rp.Holder != "":
		s.Log.Warn("replicator killed; launching a new one from the checkpoint now", "replication", rp.ID, "error", rp.ExitErr)
		return true
	case rp.Killed && live:
		s.Log.Warn("replicator killed; a new one takes over once its lease lapses", "replication", rp.ID, "error", rp.ExitErr)
	case rp.Killed && rep.Status == store.StatusStopping:
		end(lifecycle.StopNormal, "") // its position is on the target
	case rp.ExitErr != "":
		end(lifecycle.StopFatal, rp.ExitErr)
	case rep.Status == store.StatusStopping:
		reason := lifecycle.StopNormal
		if stopTimeReached(rep, now) {
			reason = lifecycle.StopAtServerTime
		}
		end(reason, "")
	case rp.stats != nil && rp.stats.Phase == runtime.PhaseStoppedAtCommitTime:
		end(lifecycle.StopAtCommitTime, "")
	case rep.ReplicationType == runtime.FullLoad:
		end(lifecycle.StopFullLoadOnly, "")
	case rep.Status == store.StatusRunning:
		// It stopped cleanly without being asked (its ECS task was
		// stopped by ECS, a SIGTERM from outside): it goes on from its
		// checkpoint.
		s.Log.Warn("replicator stopped without being asked; launching it again", "replication", rp.ID)
		return true
	default:
		end(lifecycle.StopNormal, "")
	}
	return false
}

// base returns the statistics arn's current run counts on from.
func (s *Server) base(ctx context.Context, arn string) ([]store.TableStatistics, error) {
	if b, ok := s.runs.base(arn); ok {
		return b, nil
	}
	// Launched before this server existed: the base is in Redis.
	b, err := s.Store.TableStatsBase(ctx, arn)
	if err != nil {
		return nil, err
	}
	s.runs.setBase(arn, b)
	return b, nil
}

// stopTimeReached says whether the replication's server_time stop position
// has passed.
func stopTimeReached(rep *store.ReplicationRecord, now time.Time) bool {
	sp, err := runtime.ParseStopPosition(rep.CdcStopPosition)
	return err == nil && sp.Kind == "server_time" && !now.Before(sp.At)
}

// progress copies a replicator's statistics into the replication.
func progress(rep *store.ReplicationRecord, s *runtime.Snapshot, now time.Time) {
	if s.Checkpoint != "" {
		rep.RecoveryCheckpoint = s.Checkpoint
	}
	if s.Phase == runtime.PhaseCDC {
		// The reload-target's full load is done: a replicator launched
		// again from here (reload of tables, a new server) resumes.
		rep.Reload = false
	}
	rep.CDCLatencyTarget = s.Lag.Seconds()
	st := rep.ReplicationStats
	if st == nil {
		st = &store.ReplicationStats{}
		rep.ReplicationStats = st
	}
	st.TablesLoaded, st.TablesLoading, st.TablesQueued, st.TablesErrored = 0, 0, 0, 0
	st.ValidationFailedRecords, st.ValidationPendingRecords, st.TablesMismatched = 0, 0, 0
	var first, last time.Time
	for _, t := range s.Tables {
		st.ValidationFailedRecords += t.Validation.Failed
		st.ValidationPendingRecords += t.Validation.Pending
		if t.Validation.Failed > 0 {
			st.TablesMismatched++
		}
		switch t.TableState {
		case runtime.StateCompleted:
			st.TablesLoaded++
		case runtime.StateLoading:
			st.TablesLoading++
		case runtime.StateError:
			st.TablesErrored++
		default:
			st.TablesQueued++
		}
		if !t.FullLoadStartTime.IsZero() && (first.IsZero() || t.FullLoadStartTime.Before(first)) {
			first = t.FullLoadStartTime
		}
		if t.FullLoadEndTime.After(last) {
			last = t.FullLoadEndTime
		}
	}
	if n := len(s.Tables); n > 0 {
		st.FullLoadProgressPercent = 100 * st.TablesLoaded / n
	}
	if !first.IsZero() {
		st.FullLoadStartDate = store.At(first)
	}
	if !last.IsZero() && st.TablesLoaded == len(s.Tables) {
		st.FullLoadFinishDate = store.At(last)
	}
	if st.StartDate != nil {
		st.ElapsedTimeMillis = now.Sub(st.StartDate.Time).Milliseconds()
	}
}

// carried adds the statistics of the runs before a resumed run to its own:
// the counters go on, and a table the earlier runs loaded keeps its
// full-load rows and times. A run whose counters are cumulative (restored
// from the counts its target stored with the position) keeps them: adding
// the earlier runs' last report would count twice what they applied, and
// that report misses what they applied after it.
func carried(s *runtime.Snapshot, base []store.TableStatistics) *runtime.Snapshot {
	if len(base) == 0 {
		return s
	}
	before := make(map[[2]string]store.TableStatistics, len(base))
	for _, b := range base {
		before[[2]string{b.SchemaName, b.TableName}] = b
	}
	out := *s
	out.Tables = make([]runtime.TableSnapshot, len(s.Tables))
	for i, t := range s.Tables {
		if b, ok := before[[2]string{t.SchemaName, t.TableName}]; ok {
			if !s.Cumulative {
				t.Inserts += b.Inserts
				t.Updates += b.Updates
				t.Deletes += b.Deletes
				t.DDLs += b.Ddls
			}
			if t.FullLoadStartTime.IsZero() && b.FullLoadStartTime != nil {
				if !s.Cumulative {
					t.FullLoadRows = b.FullLoadRows
				}
				t.FullLoadStartTime = b.FullLoadStartTime.Time
				if b.FullLoadEndTime != nil {
					t.FullLoadEndTime = b.FullLoadEndTime.Time
				}
			}
		}
		out.Tables[i] = t
	}
	return &out
}

// tableStats is a snapshot's tables as DescribeReplicationTableStatistics
// shows them.
func tableStats(s *runtime.Snapshot) []store.TableStatistics {
	now := store.At(time.Now())
	out := make([]store.TableStatistics, 0, len(s.Tables))
	for _, t := range s.Tables {
		ts := store.TableStatistics{
			SchemaName: t.SchemaName, TableName: t.TableName,
			Inserts: t.Inserts, Updates: t.Updates, Deletes: t.Deletes, Ddls: t.DDLs,
			AppliedInserts: t.Inserts, AppliedUpdates: t.Updates, AppliedDeletes: t.Deletes, AppliedDdls: t.DDLs,
			FullLoadRows: t.FullLoadRows, TableState: t.TableState, LastUpdateTime: now,
			EstimatedRows: t.EstimatedRows, TableStateDetails: t.TableStateDetails,
			ApplyConflicts: t.ApplyMisses, ApplyErrors: t.ApplyErrors,
		}
		if !t.FullLoadStartTime.IsZero() {
			ts.FullLoadStartTime = store.At(t.FullLoadStartTime)
		}
		if !t.FullLoadEndTime.IsZero() {
			ts.FullLoadEndTime = store.At(t.FullLoadEndTime)
		}
		v := t.Validation
		switch {
		case v.State == "":
			ts.ValidationState = runtime.ValidationNotEnabled
		case t.TableState == runtime.StateError:
			// DMS's word for a table whose data did not all arrive:
			// what it holds is not compared.
			ts.ValidationState = runtime.ValidationTableError
		default:
			ts.ValidationState = v.State
		}
		ts.ValidationPendingRecords, ts.ValidationFailedRecords, ts.ValidationSuspendedRecords = v.Pending, v.Failed, v.Suspended
		var details []string
		if t.TableStateDetails != "" {
			details = append(details, t.TableStateDetails)
		}
		if v.Details != "" {
			details = append(details, v.Details)
		}
		details = append(details, t.Warnings...)
		ts.ValidationStateDetails = strings.Join(details, "; ")
		out = append(out, ts)
	}
	return out
}
