package runtime

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// buffer carries changes from the source reader to the applier. It holds at
// most limit bytes of changes: Emit blocks past that, which pauses reading
// (DMS's MemoryLimitTotal) instead of growing without bound.
type buffer struct {
	ch  chan *Change
	sem *semaphore.Weighted
	max int64
}

func newBuffer(limitBytes int64) *buffer {
	return &buffer{ch: make(chan *Change, 4096), sem: semaphore.NewWeighted(limitBytes), max: limitBytes}
}

// Emit implements Emitter.
func (b *buffer) Emit(ctx context.Context, c *Change) error {
	n := b.weight(c)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	select {
	case b.ch <- c:
		return nil
	case <-ctx.Done():
		b.sem.Release(n)
		return ctx.Err()
	}
}

// release returns a consumed change's bytes to the budget.
func (b *buffer) release(c *Change) { b.sem.Release(b.weight(c)) }

// weight is a change's share of the budget; a change larger than the whole
// budget takes all of it, so it still passes, alone.
func (b *buffer) weight(c *Change) int64 {
	n := int64(c.Size) + 64
	if n > b.max {
		n = b.max
	}
	return n
}
