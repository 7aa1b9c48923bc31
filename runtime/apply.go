package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// apply writes the changes of buf to the target through ap until buf closes
// or the stream reaches StopAtCommitTime (see applyLoop.run).
func (r *Replicator) apply(ctx context.Context, buf *buffer, ap Applier, from Position) error {
	l := &applyLoop{
		r: r, buf: buf, target: ap,
		window: r.Settings.batchWindow(),
		limit:  int64(r.Settings.ChangeProcessingTuning.BatchApplyMemoryLimit) << 20,
		tracer: otel.Tracer(traceScope),
		// The options are built once: a span per target transaction
		// costs no allocation of attributes in the loop.
		spanOpts: []trace.SpanStartOption{trace.WithAttributes(dbAttributes(ctx, nil)...)},
		counts:   tally{},
		start:    from,
		careful:  r.careful,
	}
	l.acker, _ = r.Source.(Acker)
	return l.run(ctx)
}

// applyLoop writes the change stream to the target. Source transactions are
// grouped into one target transaction while more are already waiting (up to
// the batch window and memory limit), so a replicator that is behind catches
// up in large commits, and one that is caught up commits every transaction
// at once. One goroutine runs it; nothing in it is shared.
type applyLoop struct {
	r      *Replicator
	buf    *buffer
	target Applier
	acker  Acker         // nil when the source releases nothing
	window time.Duration // how long a target transaction waits for more source transactions
	limit  int64         // bytes of changes past which it commits
	tracer trace.Tracer
	// spanOpts start the span of each target transaction.
	spanOpts []trace.SpanStartOption

	// inTxn is set between a source transaction's OpBegin and its OpCommit.
	inTxn bool
	// pending is the OpCommit of the last source transaction applied to
	// the open target transaction, nil when nothing waits for a commit;
	// opened is when the target transaction's first one began, and held
	// the bytes of changes applied to it.
	pending *Change
	opened  time.Time
	held    int64
	// skip holds the reloaded tables whose copy already holds the current
	// source transaction, nil if none.
	skip map[*Table]bool
	// start is where the stream started; at and lastAt are the position
	// and commit time of the last commit, for repairs made between
	// source transactions. deferred are repairs that came while a
	// source transaction was open.
	start    Position
	lastAt   time.Time
	deferred []*Repair
	// began is the position of the current source transaction's OpBegin;
	// reached is a source's progress that waits for the open target
	// transaction to commit before it is true of the target.
	began, reached Position
	// Changes are counted when their target transaction commits: a group
	// rolled back at a stop is sent again by the source and must not count
	// twice.
	counts tally
	// shown are what the statistics say of the open target transaction
	// (a table suspended, a change recorded as refused): they are shown
	// when it commits, so no reader sees them before the rows that go
	// with them (awsdms_apply_exceptions, awsdms_suspended_tables).
	shown []func()
	// span is the open target transaction's, nil between them; changes and
	// txns count the changes and source transactions in it.
	span          trace.Span
	changes, txns int
	// Positions committed to the target only move forward; a step back
	// would be a bug that could apply a transaction twice.
	committed Progress
	// careful, when set, is the begin position of a source transaction
	// the target refused a change of: until the stream has passed it,
	// each change is applied alone (Applier.Try) and each source
	// transaction committed by itself, so the refused change is found and
	// handled by the ErrorBehavior policies (refused).
	careful Position
}

// run applies the buffered changes until the buffer closes, then commits
// what is complete and rolls back a source transaction cut short. At the
// first source transaction committed after StopAtCommitTime it commits
// everything before it and returns errCommitTimeReached. A target
// transaction an error leaves open is never committed: the source sends its
// transactions again.
func (l *applyLoop) run(ctx context.Context) (err error) {
	defer func() {
		if l.span != nil {
			if err == nil {
				l.span.AddEvent("rolled back: the source sends these transactions again")
			}
			endSpan(l.span, err)
		}
	}()
	// While the stream is idle, commits become durable without new ones;
	// the tick passes that on to the source. A source that is no Acker
	// needs no tick.
	var tick <-chan time.Time
	if l.acker != nil {
		t := time.NewTicker(durableCheck)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if err := l.ack(ctx); err != nil {
				return err
			}
		case run, ok := <-l.buf.ch:
			if !ok {
				return l.finish(ctx)
			}
			if err := l.applyRun(ctx, run); err != nil {
				return err
			}
			if err := l.repairDeferred(ctx); err != nil {
				return err
			}
		case rp := <-l.r.repairs:
			l.deferred = append(l.deferred, rp)
			if err := l.repairDeferred(ctx); err != nil {
				return err
			}
		}
	}
}

// applyRun applies one run of changes as the buffer handed it over, in
// order, and gives each change's room in the buffer back once it is applied
// or skipped.
func (l *applyLoop) applyRun(ctx context.Context, run []*Change) error {
	for i, c := range run {
		var err error
		switch c.Op {
		case OpBegin:
			err = l.begin(ctx, c)
		case OpCommit:
			err = l.end(ctx, c, i == len(run)-1)
		case OpProgress:
			err = l.progress(ctx, c)
		default:
			err = l.change(ctx, c)
		}
		if err != nil {
			return err
		}
		l.buf.release(c)
	}
	return nil
}

// begin starts the source transaction that c opens, in the open target
// transaction or in a new one (with its span). A transaction committed after
// StopAtCommitTime is not started: what is held is committed and begin
// returns errCommitTimeReached.
func (l *applyLoop) begin(ctx context.Context, c *Change) error {
	if stop := l.r.StopAtCommitTime; !stop.IsZero() && c.CommitTime.After(stop) {
		if err := l.finish(ctx); err != nil {
			return err
		}
		return errCommitTimeReached
	}
	if l.careful != nil && c.Position != nil && c.Position.Kind() == l.careful.Kind() && c.Position.Compare(l.careful) > 0 &&
		time.Since(l.r.refusedAt) > carefulLinger {
		l.r.Log.Info("past the refused change: applying transactions together again", "task", l.r.Task)
		l.careful, l.r.careful = nil, nil
	}
	l.inTxn = true
	if l.pending == nil {
		l.opened = time.Now()
	}
	if l.span == nil {
		_, l.span = l.tracer.Start(ctx, spanCommit, l.spanOpts...)
	}
	l.skip = l.r.skipped(c)
	l.began = c.Position
	return nil
}

// progress passes on a source's word that every transaction before c's
// position has been emitted: it is true of the target once what is held
// is committed. What is held is committed now if nothing else waits: end
// left it open because this change was already in the buffer.
func (l *applyLoop) progress(ctx context.Context, c *Change) error {
	if l.inTxn || c.Position == nil {
		return nil
	}
	if l.pending == nil {
		l.r.Stats.recordReached(c.Position)
		return nil
	}
	l.reached = c.Position
	if len(l.buf.ch) == 0 {
		return l.commit(ctx)
	}
	return nil
}

// end closes the source transaction whose OpCommit is c, and commits the
// target transaction when nothing more is waiting (c ends the run and the
// buffer is empty), when it holds limit bytes, or when it has been open for
// the batch window.
func (l *applyLoop) end(ctx context.Context, c *Change, lastOfRun bool) error {
	l.inTxn = false
	l.pending = c
	l.txns++
	if (lastOfRun && len(l.buf.ch) == 0) || l.held >= l.limit || time.Since(l.opened) >= l.window || l.careful != nil {
		return l.commit(ctx)
	}
	return nil
}

// change applies the row change or DDL c to the open target transaction,
// unless the copy of a reloaded table already holds it or the DDL policy
// keeps it from the target. An error leaves the target transaction
// unusable: run returns it.
func (l *applyLoop) change(ctx context.Context, c *Change) error {
	if l.skip != nil && !keep(c, l.skip) {
		return nil
	}
	if !l.r.handled(c) || !l.r.writes(c) {
		return nil
	}
	var err error
	if l.careful != nil {
		err = l.target.Try(ctx, c)
	} else {
		err = l.target.Apply(ctx, c)
	}
	if err != nil {
		var re *RowError
		if errors.As(err, &re) {
			return l.refused(ctx, re)
		}
		return l.again(ctx, err)
	}
	l.r.Touched.record(c, l.began)
	l.held += int64(c.Size)
	l.counts.add(c)
	l.changes++
	return nil
}

// commit commits the target transaction with the position of the last
// source transaction in it, then counts its changes in the statistics, ends
// its span and acknowledges what is durable to the source. It refuses a
// position before the last one committed.
func (l *applyLoop) commit(ctx context.Context) error {
	pos, at := l.pending.Position, l.pending.CommitTime
	if err := l.committed.Advance(pos); err != nil {
		return fmt.Errorf("refusing to commit: %w", err)
	}
	if err := l.target.Commit(ctx, pos, at, l.counts.stored(l.r.Stats)); err != nil {
		return l.again(ctx, fmt.Errorf("commit at %s: %w", pos, err))
	}
	l.counts.flush(l.r.Stats)
	for _, show := range l.shown {
		show()
	}
	l.shown = nil
	l.lastAt = at
	l.r.Stats.recordApplied(pos, at, len(l.buf.ch) == 0)
	if l.reached != nil {
		l.r.Stats.recordReached(l.reached)
		l.reached = nil
	}
	l.pending, l.held = nil, 0
	if l.span != nil {
		if l.span.IsRecording() {
			l.span.SetAttributes(changesKey.Int(l.changes), transactionsKey.Int(l.txns))
		}
		l.span.End()
	}
	l.span, l.changes, l.txns = nil, 0, 0
	return l.ack(ctx)
}

// ack passes the last position the target can no longer lose to the
// source, which may then release what it keeps for the stream. A source
// that is no Acker has nothing to release: the target is not asked.
func (l *applyLoop) ack(ctx context.Context) error {
	if l.acker == nil {
		return nil
	}
	pos, err := l.target.Durable(ctx)
	if err != nil {
		return fmt.Errorf("ask the target what is durable: %w", err)
	}
	if pos != nil {
		l.acker.Ack(pos)
	}
	return nil
}

// finish ends the loop when the stream has ended or stops. A source
// transaction cut short is rolled back with the target transaction that
// holds it, and the source sends them again; otherwise what is held is
// committed.
func (l *applyLoop) finish(ctx context.Context) error {
	if l.inTxn {
		l.shown = nil
		return l.target.Rollback(ctx)
	}
	if l.pending != nil {
		return l.commit(ctx)
	}
	return nil
}

// carefulLinger is how long the applier goes on applying change by change
// after the last refused change: refusals come in runs (a damaged table, a
// constraint the source does not have), and each one met in a grouped
// transaction costs a restart of the stream.
const carefulLinger = 2 * time.Second

// durableCheck is how often an idle applier asks the target what is durable.
const durableCheck = 200 * time.Millisecond

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
// inserts, updates, deletes, DDLs, conflicts and refused rows.
type tally map[*Table]*[6]int64

func (t tally) bump(tb *Table, i int) {
	n := t[tb]
	if n == nil {
		n = new([6]int64)
		t[tb] = n
	}
	n[i]++
}

func (t tally) add(c *Change) {
	bump := t.bump
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

// stored returns the counts the target stores with the transaction: for
// each table it changed, the statistics as they will stand once it commits.
func (t tally) stored(s *Stats) map[string]Counts {
	out := make(map[string]Counts, len(t))
	for tb, n := range t {
		c := s.Table(tb.SourceSchema, tb.SourceName).counts()
		c.Inserts += n[0]
		c.Updates += n[1]
		c.Deletes += n[2]
		c.DDLs += n[3]
		c.ApplyErrors += n[5]
		out[tb.QualifiedSource()] = c
	}
	return out
}

// flush adds the counts to the statistics and starts over.
func (t tally) flush(s *Stats) {
	for tb, n := range t {
		ts := s.Table(tb.SourceSchema, tb.SourceName)
		ts.Inserts.Add(n[0])
		ts.Updates.Add(n[1])
		ts.Deletes.Add(n[2])
		ts.DDLs.Add(n[3])
		ts.ApplyMisses.Add(n[4])
		ts.ApplyErrors.Add(n[5])
		delete(t, tb)
	}
}

// repairDeferred makes the repairs that wait, unless a source transaction
// is open: they go into the open target transaction (or a new one) and are
// committed at once, at the last position applied.
func (l *applyLoop) repairDeferred(ctx context.Context) error {
	if l.inTxn || len(l.deferred) == 0 {
		return nil
	}
	todo := l.deferred
	l.deferred = nil
	var made []*Repair
	for _, rp := range todo {
		if !rp.Still() {
			rp.done <- errRepairStale
			continue
		}
		for _, c := range rp.Changes {
			if err := l.target.Apply(ctx, c); err != nil {
				rp.done <- err
				for _, m := range made {
					m.done <- fmt.Errorf("rolled back with another repair: %w", err)
				}
				return fmt.Errorf("repair: %w", err)
			}
		}
		made = append(made, rp)
	}
	if len(made) == 0 {
		return nil
	}
	var err error
	if l.pending != nil {
		err = l.commit(ctx)
	} else {
		pos := l.committed.Get()
		if pos == nil {
			pos = l.start
		}
		err = l.target.Commit(ctx, pos, l.lastAt, nil) // repairs are not changes of the source: nothing to count
	}
	for _, m := range made {
		m.done <- err
	}
	return err
}
