package validate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/runtime"
)

// Validator compares a replication's target with its source. It
// implements runtime.Validation.
type Validator struct {
	Task           string
	Source, Target runtime.SnapshotReader
	// Recorder keeps the failures on the target; nil keeps them in the
	// statistics only.
	Recorder       runtime.FailureRecorder
	Settings       runtime.ValidationSettings
	ZeroDateAsNull bool
	Stats          *runtime.Stats
	// Streaming says a change stream applies the source's changes while
	// validation runs, recording what it writes in Touched. Without one
	// the target stands still and a row that differs is compared once
	// more, after the delays, before it is reported.
	Streaming bool
	// Continuous validates the rows the stream writes (EnableValidation);
	// without it Follow only settles the rows a validation of whole
	// tables left pending (a validate-only request).
	Continuous bool
	Touched    *runtime.Touched
	// Repair, when set, rewrites failed rows from the source read by
	// Rows (SluiceSettings.RepairValidationFailures).
	Repair func(context.Context, *runtime.Repair) error
	Rows   runtime.RowFetcher
	Log    *slog.Logger

	mu     sync.Mutex
	tables map[string]*tableRun
	failed int64  // failures of every table, for FailureMaxCount
	halted string // why validation stopped for the whole replication
}

var _ runtime.Validation = (*Validator)(nil)

// tableRun is the validation of one table.
type tableRun struct {
	t *runtime.Table
	p *plan
	// err is why the table cannot be validated (its ValidationState is
	// Error); halted is why its validation stopped.
	err    error
	halted string
	// pending are rows that differed and wait to be compared again.
	pending                              []*candidate
	failed, suspended, compared, fetched int64
	repaired                             int64
	// since is the position from which the rows the stream writes are not
	// yet validated; whole asks for the whole table to be compared again.
	since   runtime.Position
	whole   bool
	running bool
	last    time.Time
}

// candidate is a row that differed between two snapshots.
type candidate struct {
	m mismatch
	// lo and hi are the snapshots' positions, lower first; nil when they
	// say nothing (no stream: the target stands still; or a snapshot
	// without a position).
	lo, hi runtime.Position
	first  time.Time // when the row was first found different
}

func (v *Validator) log() *slog.Logger {
	if v.Log == nil {
		return slog.Default()
	}
	return v.Log
}

func (v *Validator) run(t *runtime.Table) *tableRun {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tables == nil {
		v.tables = map[string]*tableRun{}
	}
	name := t.QualifiedSource()
	tr := v.tables[name]
	if tr == nil {
		tr = &tableRun{}
		v.tables[name] = tr
	}
	tr.t = t
	return tr
}

// tableJobs is how many tables are compared at once: a small table need
// not wait for a large one, and each holds 2×ThreadCount+1 sessions.
const tableJobs = 2

// Tables implements runtime.Validation: each table is compared whole,
// tableJobs at a time, its key ranges ThreadCount at a time.
func (v *Validator) Tables(ctx context.Context, tables []*runtime.Table) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(tableJobs)
	for _, t := range tables {
		g.Go(func() error { return v.table(gctx, t) })
	}
	return g.Wait()
}

// table compares one table whole; it fails only when ctx ends: the
// table's own failures are in its statistics.
func (v *Validator) table(ctx context.Context, t *runtime.Table) error {
	tr := v.run(t)
	v.mu.Lock()
	tr.err, tr.halted, tr.pending = nil, "", nil
	tr.failed, tr.suspended, tr.compared, tr.fetched, tr.repaired = 0, 0, 0, 0, 0
	tr.running = true
	v.mu.Unlock()
	v.report(tr)
	if v.Recorder != nil {
		if err := v.Recorder.RecordValidationFailures(ctx, v.Task, []string{t.QualifiedSource()}, nil); err != nil {
			v.log().Warn("could not clear the table's earlier validation failures", "table", t.QualifiedSource(), "error", err)
		}
	}
	err := v.whole(ctx, tr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		v.log().Warn("table not validated", "table", t.QualifiedSource(), "error", err)
	}
	if !v.Streaming {
		// No stream follows: what differs is compared once more, after
		// the delays, and then reported.
		if err := v.settle(ctx, []*tableRun{tr}, true); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	v.mu.Lock()
	tr.running = false
	v.mu.Unlock()
	v.report(tr)
	return nil
}

// whole compares all of tr's table, with retries, and queues what
// differs.
func (v *Validator) whole(ctx context.Context, tr *tableRun) error {
	v.mu.Lock()
	halted := v.halted != ""
	v.mu.Unlock()
	if halted {
		return nil
	}
	if tr.p == nil || tr.p.t != tr.t {
		p, err := newPlan(tr.t, v.Source.Dialect(), v.Target.Dialect(), v.Settings, v.ZeroDateAsNull)
		if err != nil {
			v.mu.Lock()
			tr.err = err
			v.mu.Unlock()
			return err
		}
		tr.p = p
	}
	since := v.Stats.Reached()
	var found []*candidate
	var err error
	wait := 2 * time.Second
	for try := 1; ; try++ {
		found, err = v.pass(ctx, tr)
		if err == nil || ctx.Err() != nil || try == 3 {
			break
		}
		v.log().Warn("table validation failed; trying again", "table", tr.p.name, "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		tr.err = fmt.Errorf("could not compare the table: %w", err)
		return tr.err
	}
	tr.since, tr.whole, tr.last = since, false, time.Now()
	tr.pending = mergeCandidates(tr.pending, found)
	return nil
}

// mergeCandidates adds found to pending, keeping for a row found again
// when it was first found.
func mergeCandidates(pending, found []*candidate) []*candidate {
	seen := keepFirst(found, pending)
	out := make([]*candidate, 0, len(found)+len(pending))
	out = append(out, found...)
	for _, c := range pending {
		if !seen[c.m.keyString()] {
			out = append(out, c)
		}
	}
	return out
}

// keepFirst gives each row of found that earlier holds too the time it was
// first found, and returns the keys of found.
func keepFirst(found, earlier []*candidate) map[string]bool {
	first := map[string]time.Time{}
	for _, c := range earlier {
		first[c.m.keyString()] = c.first
	}
	seen := make(map[string]bool, len(found))
	for _, c := range found {
		k := c.m.keyString()
		if f, ok := first[k]; ok && f.Before(c.first) {
			c.first = f
		}
		seen[k] = true
	}
	return seen
}

// sessions opens n pairs of snapshots, and one more source session if
// extra is set.
func (v *Validator) sessions(ctx context.Context, n int, extra bool) (src, tgt []runtime.ReadSession, err error) {
	m := n
	if extra {
		m++
	}
	if src, err = v.Source.ReadSnapshots(ctx, v.Task, m, v.Streaming); err != nil {
		return nil, nil, fmt.Errorf("open snapshots of the source: %w", err)
	}
	if tgt, err = v.Target.ReadSnapshots(ctx, v.Task, n, v.Streaming); err != nil {
		runtime.CloseSessions(ctx, src)
		return nil, nil, fmt.Errorf("open snapshots of the target: %w", err)
	}
	return src, tgt, nil
}

// window is what a pair of snapshots says about the rows that differ
// between them: lo and hi are their positions, lower first; nil when they
// say nothing.
func (v *Validator) window(src, tgt runtime.ReadSession) (lo, hi runtime.Position) {
	p, a := src.Position(), tgt.Position()
	if !v.Streaming || p == nil || a == nil || p.Kind() != a.Kind() {
		return nil, nil
	}
	if p.Compare(a) < 0 {
		return p, a
	}
	return a, p
}

// pass compares the whole table once.
func (v *Validator) pass(ctx context.Context, tr *tableRun) ([]*candidate, error) {
	p := tr.p
	threads := v.Settings.ThreadCount
	if est := p.t.EstimatedRows; p.keyless() || (est > 0 && est < int64(v.Settings.PartitionSize)) {
		// One range: more sessions would only wait.
		threads = 1
	}
	srcS, tgtS, err := v.sessions(ctx, threads, !p.keyless())
	if err != nil {
		return nil, err
	}
	defer runtime.CloseSessions(ctx, srcS)
	defer runtime.CloseSessions(ctx, tgtS)
	now := time.Now()
	if p.keyless() {
		src, tgt := &reader{p: p, src: true, s: srcS[0]}, &reader{p: p, s: tgtS[0]}
		found, n, err := multiset(ctx, src, tgt)
		if err != nil {
			return nil, err
		}
		lo, hi := v.window(srcS[0], tgtS[0])
		v.mu.Lock()
		tr.compared += n
		tr.fetched += src.fetched + tgt.fetched
		v.mu.Unlock()
		out := make([]*candidate, len(found))
		for i, m := range found {
			out[i] = &candidate{m: m, lo: lo, hi: hi, first: now}
		}
		return out, nil
	}
	if !v.Streaming && !p.client {
		// A table that stands still is most often equal: one sum of each
		// side says so at the cost of one scan, before ranges are summed
		// to find what differs.
		n, ssum, tn, tsum, err := sumBoth(ctx, &reader{p: p, src: true, s: srcS[0]}, &reader{p: p, s: tgtS[0]}, nil, nil)
		if err != nil {
			return nil, err
		}
		if n == tn && ssum == tsum {
			v.mu.Lock()
			tr.compared += n
			v.mu.Unlock()
			return nil, nil
		}
	}
	type span struct{ lo, hi bound }
	ranges := make(chan span, threads)
	g, gctx := errgroup.WithContext(ctx)
	walker := &reader{p: p, src: true, s: srcS[threads]}
	g.Go(func() error {
		defer close(ranges)
		if p.bucketed() && v.Settings.ValidationMode != runtime.ValidateRowLevel {
			// An integer key: every range of both sides is summed in
			// one scan each, and only the ranges that differ are
			// compared (and split) further.
			srcR := make([]*reader, threads)
			tgtR := make([]*reader, threads)
			for i := range threads {
				srcR[i], tgtR[i] = &reader{p: p, src: true, s: srcS[i]}, &reader{p: p, s: tgtS[i]}
			}
			differ, ok, err := v.buckets(gctx, walker, srcR, tgtR)
			if err != nil {
				return err
			}
			if ok {
				for _, r := range differ {
					select {
					case ranges <- span{r[0], r[1]}:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				return nil
			}
		}
		var last bound
		for {
			next, err := walker.keyAt(gctx, walker.where(last, nil), int64(v.Settings.PartitionSize))
			if err != nil {
				return fmt.Errorf("source: split into ranges: %w", err)
			}
			select {
			case ranges <- span{last, next}:
			case <-gctx.Done():
				return gctx.Err()
			}
			if next == nil {
				return nil
			}
			last = next
		}
	})
	var mu sync.Mutex
	var out []*candidate
	for i := 0; i < threads; i++ {
		w := &pair{
			src: &reader{p: p, src: true, s: srcS[i]}, tgt: &reader{p: p, s: tgtS[i]},
			leaf: leafRows, split: v.Settings.ValidationMode != runtime.ValidateRowLevel,
		}
		lo, hi := v.window(srcS[i], tgtS[i])
		g.Go(func() error {
			for r := range ranges {
				if err := w.compare(gctx, r.lo, r.hi, 0); err != nil {
					return err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range w.found {
				out = append(out, &candidate{m: m, lo: lo, hi: hi, first: now})
			}
			v.mu.Lock()
			tr.compared += w.compared
			tr.fetched += w.src.fetched + w.tgt.fetched
			v.mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Follow implements runtime.Validation: every ValidationQueryCdcDelaySeconds
// (at least every second), the rows the stream wrote since the last round
// are compared, and the rows that differed are looked at again.
func (v *Validator) Follow(ctx context.Context, tables []*runtime.Table) error {
	for _, t := range tables {
		if !v.Continuous {
			break
		}
		tr := v.run(t)
		v.mu.Lock()
		if tr.since == nil && tr.p == nil && tr.err == nil {
			tr.whole = true
		}
		v.mu.Unlock()
	}
	tick := max(v.Settings.CDCDelay(), time.Second)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tick):
		}
		if err := v.round(ctx); err != nil && ctx.Err() != nil {
			return nil
		} else if err != nil {
			v.log().Warn("validation round failed; the next one tries again", "error", err)
		}
	}
}

// round is one round of Follow.
func (v *Validator) round(ctx context.Context) error {
	v.mu.Lock()
	var runs []*tableRun
	for _, tr := range v.tables {
		if tr.err == nil && tr.halted == "" && !tr.running {
			runs = append(runs, tr)
		}
	}
	halted := v.halted != ""
	v.mu.Unlock()
	if halted {
		return nil
	}
	// The rows written since each table's last round, collected now and
	// compared after the CDC delay, once the stream has applied them.
	reached := v.Stats.Reached()
	type work struct {
		tr   *tableRun
		keys []bound
	}
	var todo []work
	for _, tr := range runs {
		if !v.Continuous {
			break
		}
		v.mu.Lock()
		again, since := tr.whole || tr.p == nil, tr.since
		v.mu.Unlock()
		if again {
			if err := v.whole(ctx, tr); err != nil {
				v.report(tr)
			}
			continue
		}
		var keys []string
		changed := false
		if since == nil || reached == nil || since.Kind() == reached.Kind() {
			keys, changed = v.Touched.Changed(tr.p.name, since)
		}
		v.mu.Lock()
		tr.since = reached
		if changed || (!tr.p.tracked && len(keys) > 0) {
			tr.whole = true
			keys = nil
		}
		v.mu.Unlock()
		if len(keys) > 0 {
			w := work{tr: tr}
			for _, k := range keys {
				w.keys = append(w.keys, strings.SplitN(k, runtime.KeySep, len(tr.p.key)))
			}
			todo = append(todo, w)
		}
	}
	if d := v.Settings.CDCDelay(); d > 0 && len(todo) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	if len(todo) > 0 {
		src, tgt, err := v.sessions(ctx, 1, false)
		if err != nil {
			return err
		}
		lo, hi := v.window(src[0], tgt[0])
		now := time.Now()
		for _, w := range todo {
			pr := &pair{src: &reader{p: w.tr.p, src: true, s: src[0]}, tgt: &reader{p: w.tr.p, s: tgt[0]}}
			if err := pr.keys(ctx, w.keys); err != nil {
				runtime.CloseSessions(ctx, src)
				runtime.CloseSessions(ctx, tgt)
				return err
			}
			found := make([]*candidate, len(pr.found))
			for i, m := range pr.found {
				found[i] = &candidate{m: m, lo: lo, hi: hi, first: now}
			}
			v.mu.Lock()
			w.tr.compared += pr.compared
			w.tr.fetched += pr.src.fetched + pr.tgt.fetched
			w.tr.pending = mergeCandidates(w.tr.pending, found)
			w.tr.last = now
			v.mu.Unlock()
		}
		runtime.CloseSessions(ctx, src)
		runtime.CloseSessions(ctx, tgt)
	}
	err := v.settle(ctx, runs, false)
	v.forget()
	for _, tr := range runs {
		v.report(tr)
	}
	return err
}

// forget lets the record of written rows drop what no table asks about.
func (v *Validator) forget() {
	if v.Touched == nil {
		return
	}
	v.mu.Lock()
	var low runtime.Position
	lower := func(p runtime.Position) {
		if p != nil && (low == nil || (p.Kind() == low.Kind() && p.Compare(low) < 0)) {
			low = p
		}
	}
	for _, tr := range v.tables {
		lower(tr.since)
		for _, c := range tr.pending {
			lower(c.lo)
		}
	}
	v.mu.Unlock()
	if low != nil {
		v.Touched.Forget(low)
	}
}

// buckets sums the table's key ranges, PartitionSize keys wide, in one
// scan of each side (split in as many parts as there are sessions, summed
// at once), and returns the ranges whose sums differ; ok is false when the
// source holds no row to span the key (the ranges are walked).
func (v *Validator) buckets(ctx context.Context, walker *reader, src, tgt []*reader) (differ [][2]bound, ok bool, err error) {
	lo, hi, ok, err := walker.keySpan(ctx)
	if err != nil || !ok {
		return nil, false, err
	}
	b := bucketSpan{lo: lo, step: int64(v.Settings.PartitionSize)}
	b.n = (hi-lo)/b.step + 1
	// Sparse keys would make a bucket of nearly every row: the ranges
	// are walked instead, so memory holds a bounded number of sums.
	limit := int64(100_000)
	if est := walker.p.t.EstimatedRows; est > 0 {
		limit = min(limit, max(64, 4*est/b.step))
	}
	if hi < lo || b.n > limit {
		return nil, false, nil
	}
	// Each part is summed on both sides at once: ThreadCount queries
	// run together.
	parts := int64(max(1, (v.Settings.ThreadCount+1)/2))
	per := (b.n + parts - 1) / parts
	sums := make([]map[int64]string, 2*parts)
	g, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		first, last := i*per, min((i+1)*per, b.n)
		if first >= last {
			continue
		}
		for j, r := range []*reader{src[i], tgt[i]} {
			g.Go(func() error {
				m, err := r.bucketSums(gctx, b, first, last)
				sums[2*i+int64(j)] = m
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	ssum, tsum := map[int64]string{}, map[int64]string{}
	for i, m := range sums {
		for k, x := range m {
			if i%2 == 0 {
				ssum[k] = x
			} else {
				tsum[k] = x
			}
		}
	}
	seen := map[int64]bool{}
	for i, sv := range ssum {
		seen[i] = true
		if tsum[i] != sv {
			l, h := b.bounds(i)
			differ = append(differ, [2]bound{l, h})
		}
	}
	for i := range tsum {
		if !seen[i] {
			l, h := b.bounds(i)
			differ = append(differ, [2]bound{l, h})
		}
	}
	return differ, true, nil
}
