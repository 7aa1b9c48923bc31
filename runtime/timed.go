package runtime

import (
	"context"
	"sync/atomic"
	"time"
)

// DefaultTargetTimeout is how long a target may take to answer one call of
// the applier when its endpoint does not say (DMS's ExecuteTimeout
// default for PostgreSQL, 60 s).
const DefaultTargetTimeout = 60 * time.Second

// timedApplier bounds every call to the target's applier: one that takes
// longer than limit (a network that drops everything, where TCP would
// wait many minutes) cancels the context the applier works under, which
// cuts its connection, and the stream restarts with a SilenceError.
type timedApplier struct {
	Applier
	limit  time.Duration
	busy   atomic.Int64 // when the call in progress began, unix nanos; 0 between calls
	cancel context.CancelCauseFunc
}

// timed wraps ap and returns the context its calls must run under; stop
// ends the watch.
func timed(ctx context.Context, ap Applier, limit time.Duration) (_ *timedApplier, _ context.Context, stop func()) {
	tctx, cancel := context.WithCancelCause(ctx)
	t := &timedApplier{Applier: ap, limit: limit, cancel: cancel}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(limit/10, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if b := t.busy.Load(); b != 0 && time.Since(time.Unix(0, b)) > limit {
					cancel(&SilenceError{Waited: time.Since(time.Unix(0, b)), Why: "longer than the target endpoint's ExecuteTimeout (" + limit.String() + ")"})
					return
				}
			}
		}
	}()
	return t, tctx, func() { close(done); cancel(nil) }
}

func (t *timedApplier) begin() { t.busy.Store(time.Now().UnixNano()) }
func (t *timedApplier) end()   { t.busy.Store(0) }

func (t *timedApplier) Apply(ctx context.Context, c *Change) error {
	t.begin()
	defer t.end()
	return t.Applier.Apply(ctx, c)
}

func (t *timedApplier) Commit(ctx context.Context, pos Position, commitTime time.Time, counts map[string]Counts) error {
	t.begin()
	defer t.end()
	return t.Applier.Commit(ctx, pos, commitTime, counts)
}

func (t *timedApplier) Durable(ctx context.Context) (Position, error) {
	t.begin()
	defer t.end()
	return t.Applier.Durable(ctx)
}

func (t *timedApplier) Try(ctx context.Context, c *Change) error {
	t.begin()
	defer t.end()
	return t.Applier.Try(ctx, c)
}

func (t *timedApplier) Except(ctx context.Context, x Exception) error {
	t.begin()
	defer t.end()
	return t.Applier.Except(ctx, x)
}

func (t *timedApplier) Suspend(ctx context.Context, tb *Table, reason string) error {
	t.begin()
	defer t.end()
	return t.Applier.Suspend(ctx, tb, reason)
}

func (t *timedApplier) Rollback(ctx context.Context) error {
	t.begin()
	defer t.end()
	return t.Applier.Rollback(ctx)
}
