package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"time"

	"golang.org/x/sync/errgroup"
)

// streamRetrying runs the change stream and, after a passing fault, resumes
// it from the target's position, as ErrorBehavior's RecoverableError
// members say. A stream that ran a while before failing starts its count
// over. A change the target refused resumes it at once, change by change
// (replayError).
func (r *Replicator) streamRetrying(ctx context.Context, tables []*Table, from Position) error {
	rs := r.restarts()
	for {
		began := time.Now()
		err := r.stream(ctx, tables, from)
		var replay *replayError
		if ctx.Err() != nil && errors.As(err, &replay) {
			// Stopped while a refused change waits to be found: the
			// position is before it, and the next start finds it.
			return nil
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Stopped while the stream was starting (opening the
			// applier, say): a stop, not a failure.
			return nil
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
		switch {
		case errors.As(err, &replay):
			r.careful = replay.until
			r.Log.Warn("the target refused a change: applying the transactions from the target's position again, change by change, to find it", "task", r.Task, "error", replay.cause)
		case !Retryable(err):
			return err
		default:
			wait, gaveUp := rs.next(time.Since(began), err)
			if gaveUp != nil {
				return gaveUp
			}
			r.Log.Warn("change stream interrupted; resuming from the target's position", "error", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		st, serr := r.Target.State(ctx, r.Task)
		if serr != nil {
			if Retryable(serr) {
				continue
			}
			return fmt.Errorf("read the stored position to resume: %w", serr)
		}
		if st.Position != nil {
			from = st.Position
		}
		r.suspend(st.Suspended)
		// A commit the target lost (asynchronous, then a target crash)
		// is applied again: counted again from the stored counts.
		r.Stats.Restore(st.Counts)
	}
}

// stream runs the change stream from position from until ctx ends.
func (r *Replicator) stream(ctx context.Context, tables []*Table, from Position) error {
	opts := ApplyOptions{
		Batch:       r.Settings.TargetMetadata.BatchApplyEnabled,
		MemoryLimit: int64(r.Settings.ChangeProcessingTuning.BatchApplyMemoryLimit) << 20,
	}
	opts.Inserts, opts.Updates, opts.Deletes = r.Settings.ErrorBehavior.conflicts()
	if opts.Batch {
		// Batch apply writes each key's net change: an insert over a row
		// there overwrites it, a delete of a row the batch inserted and
		// deleted finds none (the only policies checkBatch lets through).
		// Reported, each would stop the batch and replay it change by
		// change.
		opts.Inserts, opts.Deletes = ConflictOverwrite, ConflictSkip
	}
	ap, err := r.Target.Applier(ctx, r.Task, tables, opts, r.Stats)
	if err != nil {
		return fmt.Errorf("open the applier: %w", err)
	}
	defer oneProcessor()()
	// The applier outlives a stop request so it can finish what it holds.
	// Its calls are bounded by the target's ExecuteTimeout.
	applyCtx := context.WithoutCancel(ctx)
	defer ap.Close(applyCtx)
	limit := r.TargetTimeout
	if limit <= 0 {
		limit = DefaultTargetTimeout
	}
	tap, tctx, stopWatch := timed(applyCtx, ap, limit)
	defer stopWatch()
	buf := newBuffer(int64(r.Settings.ChangeProcessingTuning.MemoryLimitTotal)<<20, r.Stats)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer buf.close()
		err := r.Source.Stream(gctx, from, tables, ddlMapper{buf, r})
		if ctx.Err() != nil {
			return nil // a stop request, not a failure
		}
		return err
	})
	g.Go(func() error { return r.apply(tctx, buf, tap, from) })
	err = g.Wait()
	if cut := Cut(tctx); err != nil && cut != nil {
		// The target did not answer in time: that, not the cut it made.
		err = fmt.Errorf("apply to the target: %w", cut)
	}
	if errors.Is(err, errCommitTimeReached) {
		if serr := r.syncSequences(applyCtx, tables); serr != nil {
			r.Log.Warn("could not set sequences at the stop position", "error", serr)
		}
		r.Stats.setPhase(PhaseStoppedAtCommitTime)
		r.Log.Info("stopped at CdcStopPosition commit_time", "task", r.Task, "commit_time", r.StopAtCommitTime, "checkpoint", r.Stats.Snapshot().Checkpoint)
		return nil
	}
	if ctx.Err() != nil && err == nil {
		// Sequences are set at stop too: CDC does not carry nextval calls.
		if serr := r.syncSequences(applyCtx, tables); serr != nil {
			r.Log.Warn("could not set sequences at stop", "error", serr)
		}
		r.Log.Info("stopped", "task", r.Task, "checkpoint", r.Stats.Snapshot().Checkpoint)
	}
	return err
}

// oneProcessor runs the Go scheduler on one processor (GOMAXPROCS 1) until
// the returned function is called, unless GOMAXPROCS is set in the
// environment. The change stream is one reader handing transactions to one
// applier that mostly waits for the target: on two processors every
// handover wakes another thread, which cost the replicator a fifth of its
// CPU under pgbench (0.12 cores against 0.094) and caught up no faster
// after a backlog (7,000-8,700 transactions/s either way).
func oneProcessor() (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	goruntime.GOMAXPROCS(1)
	return goruntime.SetDefaultGOMAXPROCS
}

// ddlMapper gives the new table of a DDL change its target names, in the
// reader's goroutine, before the change is buffered: the applier and the
// row changes that follow see the table complete.
type ddlMapper struct {
	next Emitter
	r    *Replicator
}

func (m ddlMapper) Emit(ctx context.Context, c *Change) error {
	if c.Op == OpDDL && c.DDL.New != nil {
		t := c.DDL.New
		// A new column, or a table renamed into the selection, is named
		// by the mappings as the load would have named it.
		m.r.mapTable(t)
		if !m.r.suspended.has(t) {
			m.r.Stats.Table(t.SourceSchema, t.SourceName).SetState(StateCompleted)
		}
	}
	return m.next.Emit(ctx, c)
}
