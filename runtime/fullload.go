package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
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
	if err := r.copyTables(ctx, tables, &rows); err != nil {
		return nil, err
	}
	if err := r.Source.EndSnapshot(ctx); err != nil {
		return nil, err
	}
	r.Log.Info("rows copied", "rows", rows.Load(), "tables", len(tables), "elapsed", time.Since(began).Round(time.Millisecond))
	if err := r.Target.FinishTables(ctx, r.unsuspended(tables), *r.Settings.SluiceSettings.CreateSecondaryIndexes); err != nil {
		return nil, fmt.Errorf("create constraints and indexes: %w", err)
	}
	if err := r.syncSequences(ctx, tables); err != nil {
		return nil, err
	}
	phase := PhaseCDC
	if r.Type == FullLoad {
		phase = PhaseDone
	}
	// A reload of tables asked for while this load ran is done by it: the
	// token is kept so that a later resume does not load them again.
	var done *Reload
	if r.ReloadToken != "" {
		done = &Reload{Token: r.ReloadToken, Tables: map[string]Position{}}
	}
	if err := r.Target.SaveState(ctx, r.Task, State{Phase: phase, Position: start, Reload: done, Suspended: r.suspended.all()}); err != nil {
		return nil, fmt.Errorf("store the end of the full load: %w", err)
	}
	r.Log.Info("full load finished", "rows", rows.Load(), "elapsed", time.Since(began).Round(time.Millisecond))
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
	pr.CloseWithError(errors.New("target stopped reading"))
	if err != nil {
		cancel()
		<-readErr
		return n, err
	}
	if err := <-readErr; err != nil {
		return n, err
	}
	return n, nil
}
