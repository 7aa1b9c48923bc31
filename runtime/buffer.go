package runtime

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// buffer carries changes from the source reader to the applier. It holds at
// most limit bytes of changes: Emit blocks past that, which pauses reading
// (DMS's MemoryLimitTotal) instead of growing without bound.
//
// Changes cross from the reader's goroutine to the applier's in runs, a
// whole transaction at a time (or maxRun changes of a large one): handing
// over each change alone costs a goroutine wake-up per change, which on a
// busy machine is most of the time a change takes.
type buffer struct {
	ch  chan []*Change
	sem *semaphore.Weighted
	max int64
	run []*Change // changes emitted but not yet handed over
	// used mirrors what the semaphore holds, for the statistics.
	used *atomic.Int64
}

// maxRun is the most changes handed over at once.
const maxRun = 512

func newBuffer(limitBytes int64, stats *Stats) *buffer {
	stats.BufferLimit.Store(limitBytes)
	return &buffer{ch: make(chan []*Change, 256), sem: semaphore.NewWeighted(limitBytes), max: limitBytes, used: &stats.BufferBytes}
}

// Emit implements Emitter. It is called from one goroutine only.
func (b *buffer) Emit(ctx context.Context, c *Change) error {
	n := b.weight(c)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	b.used.Add(n)
	b.run = append(b.run, c)
	if c.Op != OpCommit && c.Op != OpTruncate && c.Op != OpProgress && len(b.run) < maxRun {
		return nil
	}
	select {
	case b.ch <- b.run:
		b.run = make([]*Change, 0, 16)
		return nil
	case <-ctx.Done():
		for _, c := range b.run {
			b.release(c)
		}
		b.run = nil
		return ctx.Err()
	}
}

// close hands over what is left and ends the stream; the applier rolls back
// an unfinished transaction.
func (b *buffer) close() {
	if len(b.run) > 0 {
		b.ch <- b.run
	}
	close(b.ch)
}

// release returns a consumed change's bytes to the budget.
func (b *buffer) release(c *Change) {
	n := b.weight(c)
	b.used.Add(-n)
	b.sem.Release(n)
}

// weight is a change's share of the budget; a change larger than the whole
// budget takes all of it, so it still passes, alone.
func (b *buffer) weight(c *Change) int64 {
	n := int64(c.Size) + 64
	if n > b.max {
		n = b.max
	}
	return n
}
