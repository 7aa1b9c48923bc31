package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// fullLoad copies the tables in a snapshot that is consistent with the
// returned change-stream position.
func (r *Replicator) fullLoad(ctx context.Context, tables []*Table, types []UserType) (_ Position, err error) {
	r.Stats.setPhase(PhaseFullLoad)
	ctx, span := otel.Tracer(traceScope).Start(ctx, spanFullLoad, trace.WithAttributes(dbAttributes(ctx, nil)...))
	defer func() { endSpan(span, err) }()
	start, err := r.Source.Prepare(ctx, tables, PrepareOptions{Snapshot: true, Capture: r.Type != FullLoad})
	if err != nil {
		return nil, err
	}
	if err := r.Target.SaveState(ctx, r.Task, State{Phase: PhaseFullLoad, Position: start}); err != nil {
		return nil, fmt.Errorf("store the full-load state: %w", err)
	}
	r.Stats.Restore(nil) // a load from the start counts from zero
	// Every table is loaded anew: none stays suspended, and the rows an
	// earlier load refused are gone with its copy.
	r.suspend(nil)
	if err := r.Target.RecordExceptions(ctx, r.Task, tables, nil); err != nil {
		return nil, fmt.Errorf("clear awsdms_apply_exceptions of the tables to load: %w", err)
	}
	if err := r.Target.PrepareTables(ctx, types, tables, r.Settings.FullLoadSettings.TargetTablePrepMode); err != nil {
		return nil, fmt.Errorf("prepare target tables: %w", err)
	}
	began := time.Now()
	var rows atomic.Int64
	r.loaded = &loadRecord{start: start, at: start, tables: map[string]Position{}}
	if err := r.copyTables(ctx, tables, &rows); err != nil {
		return nil, err
	}
	if err := r.Source.EndSnapshot(ctx); err != nil {
		return nil, err
	}
	r.Log.Info("rows copied", "rows", rows.Load(), "tables", len(tables), "elapsed", time.Since(began).Round(time.Millisecond))
	if err := r.finishLoad(ctx, tables, start, nil); err != nil {
		return nil, err
	}
	r.Log.Info("full load finished", "rows", rows.Load(), "elapsed", time.Since(began).Round(time.Millisecond))
	return start, nil
}

// finishLoad builds the constraints and indexes, sets the sequences and
// stores the end of the full load, with floors: the tables a resumed load
// copied at a later position, whose earlier transactions the stream skips.
func (r *Replicator) finishLoad(ctx context.Context, tables []*Table, start Position, floors map[string]Position) error {
	r.loaded = nil
	if err := r.Target.FinishTables(ctx, r.unsuspended(tables), *r.Settings.SluiceSettings.CreateSecondaryIndexes); err != nil {
		return fmt.Errorf("create constraints and indexes: %w", err)
	}
	if err := r.syncSequences(ctx, tables); err != nil {
		return err
	}
	phase := PhaseCDC
	if r.Type == FullLoad {
		phase = PhaseDone
	}
	// A reload of tables asked for while this load ran is done by it: the
	// token is kept so that a later resume does not load them again. The
	// floors are kept with it, as a reload's are.
	var done *Reload
	if r.ReloadToken != "" || len(floors) > 0 {
		done = &Reload{Token: r.ReloadToken, Tables: map[string]Position{}}
		for t, p := range floors {
			done.Tables[t] = p
		}
	}
	if err := r.Target.SaveState(ctx, r.Task, State{Phase: phase, Position: start, Reload: done, Suspended: r.suspended.all(), Counts: r.Stats.Counts()}); err != nil {
		return fmt.Errorf("store the end of the full load: %w", err)
	}
	return nil
}

// loadToken marks the Reload record a full load keeps while it runs: the
// tables already copied, each at the load's start position, so that a
// load stopped or killed midway resumes with the rest instead of starting
// over.
const loadToken = "sluice:full-load"

// loadRecord is the running full load's record of its copied tables,
// each with the position its copy holds every transaction before: the
// load's start, or for a resumed load the later snapshot it copies at.
type loadRecord struct {
	mu        sync.Mutex
	start, at Position
	tables    map[string]Position
}

// loadedTables returns the tables a stored, unfinished full load had
// copied, nil if it stored none.
func loadedTables(st State) map[string]Position {
	if st.Reload == nil || st.Reload.Token != loadToken || len(st.Reload.Tables) == 0 {
		return nil
	}
	return st.Reload.Tables
}

// tableLoaded stores that t's copy is complete: a later SaveState makes
// its rows durable with the record.
func (r *Replicator) tableLoaded(ctx context.Context, t *Table) error {
	l := r.loaded
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tables[t.QualifiedSource()] = l.at
	rec := &Reload{Token: loadToken, Tables: map[string]Position{}}
	for k, v := range l.tables {
		rec.Tables[k] = v
	}
	// The loaded tables' rows are counted with the record that keeps
	// them; t is not yet marked completed.
	counts := r.Stats.Counts()
	for k := range l.tables {
		if ts, ok := r.Stats.lookup(k); ok {
			c := counts[k]
			c.FullLoadRows = ts.FullLoadRows.Load()
			counts[k] = c
		}
	}
	return r.Target.SaveState(ctx, r.Task, State{Phase: PhaseFullLoad, Position: l.start, Reload: rec, Suspended: r.suspended.all(), Counts: counts})
}

// resumeFullLoad goes on with a full load a stopped or killed replicator
// left: the tables it had copied are kept (their copies hold every
// transaction before the load's start, where the stream begins), the
// others are copied again at a new snapshot, as ReloadReplicationTables
// copies tables, and the stream skips their transactions before it.
func (r *Replicator) resumeFullLoad(ctx context.Context, tables []*Table, types []UserType, st State) (Position, error) {
	r.Stats.setPhase(PhaseFullLoad)
	done := loadedTables(st)
	start := st.Position
	var todo []*Table
	for _, t := range tables {
		if _, ok := done[t.QualifiedSource()]; ok {
			ts := r.Stats.Table(t.SourceSchema, t.SourceName)
			ts.SetState(StateCompleted)
			continue
		}
		todo = append(todo, t)
	}
	r.Log.Warn("an earlier full load did not finish: keeping the tables it copied, loading the rest", "task", r.Task, "kept", len(tables)-len(todo), "to_load", len(todo))
	if _, err := r.Source.Prepare(ctx, tables, PrepareOptions{Capture: r.Type != FullLoad, Resume: r.Type != FullLoad}); err != nil {
		return nil, err
	}
	r.loaded = &loadRecord{start: start, tables: map[string]Position{}}
	// A table an earlier resume copied holds a later position than the
	// start: the stream skips its transactions before that.
	floors := map[string]Position{}
	for k, v := range done {
		r.loaded.tables[k] = v
		if r.Type != FullLoad && v.Compare(start) != 0 {
			floors[k] = v
		}
	}
	if len(todo) > 0 {
		at, err := r.Source.Snapshot(ctx)
		if err != nil {
			return nil, fmt.Errorf("open a snapshot to load the rest of the tables: %w", err)
		}
		r.loaded.at = at
		defer r.Source.EndSnapshot(context.WithoutCancel(ctx))
		// The partial copies are replaced: with DO_NOTHING they would
		// stay beside the new rows.
		mode := r.Settings.FullLoadSettings.TargetTablePrepMode
		if mode == PrepDoNothing {
			mode = PrepTruncateBeforeLoad
		}
		if err := r.Target.PrepareTables(ctx, types, todo, mode); err != nil {
			return nil, fmt.Errorf("prepare the tables left to load: %w", err)
		}
		if err := r.Target.RecordExceptions(ctx, r.Task, todo, nil); err != nil {
			return nil, fmt.Errorf("clear awsdms_apply_exceptions of the tables left to load: %w", err)
		}
		var rows atomic.Int64
		if err := r.copyTables(ctx, todo, &rows); err != nil {
			return nil, err
		}
		if err := r.Source.EndSnapshot(ctx); err != nil {
			return nil, err
		}
		if r.Type != FullLoad {
			for _, t := range todo {
				floors[t.QualifiedSource()] = at
			}
		}
		r.Log.Info("rest of the full load copied", "task", r.Task, "tables", len(todo), "rows", rows.Load(), "position", at)
	}
	if err := r.finishLoad(ctx, tables, start, floors); err != nil {
		return nil, err
	}
	byName := map[string]*Table{}
	for _, t := range tables {
		byName[t.QualifiedSource()] = t
	}
	r.floors = map[*Table]Position{}
	for name, p := range floors {
		r.floors[byName[name]] = p
	}
	return start, nil
}

// copyTables copies every chunk of every table, MaxFullLoadSubTasks at once,
// largest tables first so the last chunks to finish are small ones.
func (r *Replicator) copyTables(ctx context.Context, tables []*Table, rows *atomic.Int64) error {
	sorted := append([]*Table(nil), tables...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pages > sorted[j].Pages })
	var chunks []Chunk
	left := map[*Table]*atomic.Int32{}
	spans := map[*Table]*tableSpan{}
	for _, t := range sorted {
		cs, err := r.Source.Chunks(ctx, t, r.Settings.SluiceSettings.ChunkPages)
		if err != nil {
			return fmt.Errorf("split %s into chunks: %w", t.QualifiedSource(), err)
		}
		chunks = append(chunks, cs...)
		left[t] = new(atomic.Int32)
		left[t].Store(int32(len(cs)))
		spans[t] = &tableSpan{}
	}
	tracer := otel.Tracer(traceScope)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.Settings.FullLoadSettings.MaxFullLoadSubTasks)
	for _, c := range chunks {
		g.Go(func() error {
			ts := r.Stats.Table(c.Table.SourceSchema, c.Table.SourceName)
			if r.suspended.has(c.Table) {
				return nil // another chunk's error suspended it
			}
			ts.LoadStarted.CompareAndSwap(0, time.Now().UnixNano())
			ts.SetState(StateLoading)
			span := spans[c.Table].start(gctx, tracer, c)
			n, err := r.copyChunk(gctx, c)
			if err != nil && gctx.Err() == nil && Classify(err) != KindNone {
				n, err = r.loadRefused(gctx, c, err)
			}
			if err != nil {
				ts.SetState(StateError)
				err = fmt.Errorf("copy %s (chunk %d of %d): %w", c.Table.QualifiedSource(), c.Index+1, c.Count, err)
				endSpan(span, err)
				return err
			}
			ts.FullLoadRows.Add(n)
			rows.Add(n)
			if left[c.Table].Add(-1) == 0 && !r.suspended.has(c.Table) {
				if err := r.tableLoaded(gctx, c.Table); err != nil {
					endSpan(span, err)
					return fmt.Errorf("store that %s is loaded: %w", c.Table.QualifiedSource(), err)
				}
				ts.LoadFinished.Store(time.Now().UnixNano())
				ts.SetState(StateCompleted)
				span.SetAttributes(rowsKey.Int64(ts.FullLoadRows.Load()))
				span.End()
			}
			return nil
		})
	}
	return g.Wait()
}

// copyBufferSize is the size of the writes between a chunk's copy-out and
// copy-in.
const copyBufferSize = 256 << 10

// copyChunk pipes one chunk from the source's copy-out into the target's
// copy-in, so rows stream through without being held.
// errTargetStopped is what a source's copy meets when the target stopped
// reading it.
var errTargetStopped = errors.New("target stopped reading")

func (r *Replicator) copyChunk(ctx context.Context, c Chunk) (int64, error) {
	f := CopyText
	if c.Table.BinaryCopy && r.Target.ReadsBinary() {
		f = CopyBinary
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		// Sources write a row at a time; batching the writes lets the
		// target send large COPY messages instead of one per row.
		bw := bufio.NewWriterSize(pw, copyBufferSize)
		err := r.Source.Copy(ctx, c, f, bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		readErr <- err
	}()
	n, err := r.Target.Load(ctx, c.Table, f, pr)
	pr.CloseWithError(errTargetStopped)
	if err != nil {
		cancel()
		// A source that failed first is the cause, and says whether the
		// copy can be tried again (a lost connection); the target's error
		// is then only that its input broke off.
		if rerr := <-readErr; rerr != nil && !errors.Is(rerr, errTargetStopped) && !errors.Is(rerr, context.Canceled) {
			return n, rerr
		}
		return n, err
	}
	if err := <-readErr; err != nil {
		return n, err
	}
	return n, nil
}
