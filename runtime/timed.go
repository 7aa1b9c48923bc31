package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// DefaultTargetTimeout is how long a target may take to answer one call of
// the applier when its endpoint does not say (DMS's ExecuteTimeout
// default for PostgreSQL, 60 s).
const DefaultTargetTimeout = 60 * time.Second

// Watch cuts a wait that lasts too long: between Begin and End a call may
// take up to its limit; past it the watch cancels the context it gave out,
// with a *SilenceError as the cause, which aborts the call's I/O. Time
// between calls does not count.
type Watch struct {
	busy atomic.Int64 // when the call in progress began, unix nanos; 0 between calls
}

// NewWatch watches calls made under the returned context, which it cancels
// once one lasts longer than limit (why says what a live server would have
// done meanwhile); stop ends the watch.
func NewWatch(ctx context.Context, limit time.Duration, why string) (_ *Watch, _ context.Context, stop func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	w := &Watch{}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(limit/10, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if b := w.busy.Load(); b != 0 && time.Since(time.Unix(0, b)) > limit {
					cancel(&SilenceError{Waited: time.Since(time.Unix(0, b)), Why: why})
					return
				}
			}
		}
	}()
	return w, wctx, func() { close(done); cancel(nil) }
}

// Begin marks the start of a watched call; End its end.
func (w *Watch) Begin() { w.busy.Store(time.Now().UnixNano()) }
func (w *Watch) End()   { w.busy.Store(0) }

// Cut returns the SilenceError that cancelled ctx, a context NewWatch
// gave out, or nil if it was not cut.
func Cut(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// timedApplier bounds every call to the target's applier: one that takes
// longer than the target endpoint's ExecuteTimeout (a network that drops
// everything, where TCP would wait many minutes) cuts the applier's
// connection, and the stream restarts with a SilenceError.
type timedApplier struct {
	Applier
	w *Watch
}

// timed wraps ap and returns the context its calls must run under; stop
// ends the watch.
func timed(ctx context.Context, ap Applier, limit time.Duration) (_ *timedApplier, _ context.Context, stop func()) {
	w, tctx, stop := NewWatch(ctx, limit, "longer than the target endpoint's ExecuteTimeout ("+limit.String()+")")
	return &timedApplier{Applier: ap, w: w}, tctx, stop
}

func (t *timedApplier) begin() { t.w.Begin() }
func (t *timedApplier) end()   { t.w.End() }

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
