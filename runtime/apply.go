package runtime

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// apply writes the buffered changes. Source transactions are grouped into one
// target transaction while more are already waiting (up to the batch window
// and memory limit), so a replicator that is behind catches up in large
// commits, and one that is caught up commits every transaction at once.
func (r *Replicator) apply(ctx context.Context, buf *buffer, ap Applier) (err error) {
	var (
		inTxn   bool
		pending *Change // last source commit applied but not yet committed
		opened  time.Time
		held    int64
		skip    map[*Table]bool // reloaded tables whose copy holds this transaction
		// Changes are counted when their target transaction commits: a
		// group rolled back at a stop is sent again by the source and
		// must not count twice.
		counts = tally{}
		// span is the open target transaction's, nil between them; it
		// counts the changes and source transactions in it.
		span        trace.Span
		changes, tx int
	)
	// The options are built once: a span per target transaction costs
	// no allocation of attributes in the loop.
	tracer := otel.Tracer(traceScope)
	spanOpts := []trace.SpanStartOption{trace.WithAttributes(dbAttributes(ctx, nil)...)}
	defer func() {
		if span != nil {
			if err == nil {
				span.AddEvent("rolled back: the source sends these transactions again")
			}
			endSpan(span, err)
		}
	}()
	window := r.Settings.batchWindow()
	limit := int64(r.Settings.ChangeProcessingTuning.BatchApplyMemoryLimit) << 20
	ack := func() error {
		pos, err := ap.Durable(ctx)
		if err != nil {
			return fmt.Errorf("ask the target what is durable: %w", err)
		}
		if pos != nil {
			r.Source.Ack(pos)
		}
		return nil
	}
	// Positions committed to the target only move forward; a step back
	// would be a bug that could apply a transaction twice.
	var committed Progress
	commit := func() error {
		if err := committed.Advance(pending.Position); err != nil {
			return fmt.Errorf("refusing to commit: %w", err)
		}
		if err := ap.Commit(ctx, pending.Position, pending.CommitTime); err != nil {
			return fmt.Errorf("commit at %s: %w", pending.Position, err)
		}
		counts.flush(r.Stats)
		r.Stats.recordApplied(pending.Position, pending.CommitTime, len(buf.ch) == 0)
		pending, held = nil, 0
		if span != nil {
			if span.IsRecording() {
				span.SetAttributes(changesKey.Int(changes), transactionsKey.Int(tx))
			}
			span.End()
		}
		span, changes, tx = nil, 0, 0
		return ack()
	}
	// While the stream is idle, commits become durable without new ones;
	// the tick passes that on to the source.
	tick := time.NewTicker(durableCheck)
	defer tick.Stop()
	for {
		var run []*Change
		select {
		case <-tick.C:
			if err := ack(); err != nil {
				return err
			}
			continue
		case next, ok := <-buf.ch:
			if !ok {
				return r.drain(ctx, ap, inTxn, pending, commit)
			}
			run = next
		}
		for i, c := range run {
			switch c.Op {
			case OpBegin:
				if !r.StopAtCommitTime.IsZero() && c.CommitTime.After(r.StopAtCommitTime) {
					if err := r.drain(ctx, ap, false, pending, commit); err != nil {
						return err
					}
					return errCommitTimeReached
				}
				inTxn = true
				if pending == nil {
					opened = time.Now()
				}
				if span == nil {
					_, span = tracer.Start(ctx, spanCommit, spanOpts...)
				}
				skip = r.skipped(c)
			case OpCommit:
				inTxn = false
				pending = c
				tx++
				last := i == len(run)-1
				if (last && len(buf.ch) == 0) || held >= limit || time.Since(opened) >= window {
					if err := commit(); err != nil {
						return err
					}
				}
			default:
				if skip != nil && !keep(c, skip) {
					break
				}
				if !r.handled(c) {
					break
				}
				if err := ap.Apply(ctx, c); err != nil {
					return err
				}
				held += int64(c.Size)
				counts.add(c)
				changes++
			}
			buf.release(c)
		}
	}
}

// durableCheck is how often an idle applier asks the target what is durable.
const durableCheck = 200 * time.Millisecond

// drain finishes the apply loop when the stream has ended.
func (r *Replicator) drain(ctx context.Context, ap Applier, inTxn bool, pending *Change, commit func() error) error {
	if inTxn {
		// The stream ended inside a transaction: what was applied of it is
		// rolled back with the group, and the source sends it again.
		return ap.Rollback(ctx)
	}
	if pending != nil {
		return commit()
	}
	return nil
}

// handled says whether the DDL policy lets c reach the target; the ones it
// does not are logged.
func (r *Replicator) handled(c *Change) bool {
	var kind DDLKind
	switch c.Op {
	case OpDDL:
		kind = c.DDL.Kind
	case OpTruncate:
	default:
		return true
	}
	if r.Settings.ChangeProcessingDdlHandlingPolicy.handles(kind) {
		return true
	}
	r.Log.Warn("source DDL not applied to the target (ChangeProcessingDdlHandlingPolicy)", "op", c.Op)
	return false
}

// tally counts the changes of an uncommitted target transaction per table:
// inserts, updates, deletes and DDLs.
type tally map[*Table]*[4]int64

func (t tally) add(c *Change) {
	bump := func(tb *Table, i int) {
		n := t[tb]
		if n == nil {
			n = new([4]int64)
			t[tb] = n
		}
		n[i]++
	}
	switch c.Op {
	case OpInsert:
		bump(c.Table, 0)
	case OpUpdate:
		bump(c.Table, 1)
	case OpDelete:
		bump(c.Table, 2)
	case OpTruncate:
		for _, tb := range c.Tables {
			bump(tb, 3)
		}
	case OpDDL:
		if c.DDL.Old != nil {
			bump(c.DDL.Old, 3)
		} else {
			bump(c.DDL.New, 3)
		}
	}
}

// flush adds the counts to the statistics and starts over.
func (t tally) flush(s *Stats) {
	for tb, n := range t {
		ts := s.Table(tb.SourceSchema, tb.SourceName)
		ts.Inserts.Add(n[0])
		ts.Updates.Add(n[1])
		ts.Deletes.Add(n[2])
		ts.DDLs.Add(n[3])
		delete(t, tb)
	}
}
