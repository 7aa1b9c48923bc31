package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/runtime/mapping"
)

// Replication types, as DMS names them.
const (
	FullLoad       = "full-load"
	CDC            = "cdc"
	FullLoadAndCDC = "full-load-and-cdc"
)

// ErrNothingSelected is returned when the table mappings select no table.
var ErrNothingSelected = errors.New("the table mappings select no table")

// PhaseStoppedAtCommitTime is the statistics phase of a replicator that
// ended at its CdcStopPosition commit_time.
const PhaseStoppedAtCommitTime = "stopped-at-commit-time"

// errCommitTimeReached ends the apply loop at StopAtCommitTime.
var errCommitTimeReached = errors.New("commit time reached")

// Replicator runs one replication: an optional full load, then the change
// stream, until its context ends.
type Replicator struct {
	Task     string // replication identifier; keys the target's stored state
	Type     string // FullLoad, CDC or FullLoadAndCDC
	Source   Source
	Target   Target
	Rules    *mapping.Rules
	Settings Settings
	// StartPosition, when set, is where a CDC replication without a stored
	// position starts (CdcStartPosition).
	StartPosition Position
	// StartTime, when set, is the commit time a CDC replication without a
	// stored position starts from (CdcStartTime).
	StartTime time.Time
	// Reload ignores the position stored on the target and starts over
	// (StartReplicationType reload-target).
	Reload bool
	// StopAtCommitTime, when set, ends the change stream before the first
	// source transaction committed after it (CdcStopPosition commit_time):
	// everything committed up to then is applied, nothing after.
	StopAtCommitTime time.Time
	// ReloadTables are tables, by source name schema.table, to load again
	// before the change stream goes on (ReloadReplicationTables);
	// ReloadToken names the request, which is carried out once.
	ReloadTables []string
	ReloadToken  string
	Stats        *Stats
	Log          *slog.Logger

	// floors are the positions of the reloaded tables' copies: the stream
	// skips their transactions committed before them.
	floors map[*Table]Position
}

// Run replicates until ctx ends, which is a graceful stop: the transaction
// being applied is finished or rolled back, the position committed, the
// sequences set, and Run returns nil. A full-load replication returns when
// the load is done.
func (r *Replicator) Run(ctx context.Context) error {
	switch r.Type {
	case FullLoad, CDC, FullLoadAndCDC:
	default:
		return fmt.Errorf("ReplicationType %q is not valid: use full-load, cdc or full-load-and-cdc", r.Type)
	}
	if r.Stats == nil {
		r.Stats = NewStats()
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	tables, types, err := r.tables(ctx)
	if err != nil {
		return err
	}
	st, err := r.Target.State(ctx, r.Task)
	if err != nil {
		return fmt.Errorf("read the stored state of %s on the target: %w", r.Task, err)
	}
	if r.Reload {
		r.Log.Info("reload-target: ignoring the stored position and starting over", "task", r.Task, "phase", st.Phase)
		st = State{}
	}
	if r.Type == FullLoad && st.Phase == PhaseDone {
		r.Log.Info("full load already finished; nothing to do", "task", r.Task)
		return nil
	}
	var from Position
	switch {
	case st.Phase == PhaseCDC && r.Type != FullLoad:
		from = st.Position
		if _, err := r.Source.Prepare(ctx, tables, PrepareOptions{Capture: true, Resume: true}); err != nil {
			return err
		}
		r.Log.Info("resuming change processing", "task", r.Task, "position", from)
		for _, t := range tables {
			r.Stats.Table(t.SourceSchema, t.SourceName).SetState(StateCompleted)
		}
		if err := r.reload(ctx, tables, types, st); err != nil {
			if ctx.Err() != nil {
				r.Log.Info("stopped while reloading tables; the next start goes on with them", "task", r.Task)
				return nil
			}
			return err
		}
	case r.Type == CDC:
		start, err := r.Source.Prepare(ctx, tables, PrepareOptions{Capture: true, From: r.StartPosition, FromTime: r.StartTime})
		if err != nil {
			return err
		}
		from = start
		if r.StartPosition != nil {
			if r.StartPosition.Kind() != start.Kind() || r.StartPosition.Compare(start) < 0 {
				return fmt.Errorf("CdcStartPosition %s is before %s, where the source's change capture begins: the changes before it can no longer be read. Use a position at or after %s, or a full-load-and-cdc replication", r.StartPosition, start, start)
			}
			from = r.StartPosition
		}
		if err := r.Target.SaveState(ctx, r.Task, State{Phase: PhaseCDC, Position: from}); err != nil {
			return fmt.Errorf("store the start position: %w", err)
		}
	default:
		if st.Phase == PhaseFullLoad {
			r.Log.Warn("an earlier full load did not finish; loading again", "task", r.Task)
		}
		from, err = r.fullLoad(ctx, tables, types)
		if err != nil && ctx.Err() != nil {
			r.Log.Info("stopped during the full load; the next start loads again", "task", r.Task)
			return nil
		}
		if err != nil {
			return err
		}
		if r.Type == FullLoad {
			return nil
		}
	}
	r.Stats.setPhase("cdc")
	return r.streamRetrying(ctx, tables, from)
}

// reload loads tables again while the replication goes on: the tables of a
// new request, and those of an earlier one that was stopped before its
// copies were done. Each copy is taken at a new position; the change stream
// then skips the table's transactions committed before it, which the copy
// holds, and applies the rest, so the table converges exactly.
func (r *Replicator) reload(ctx context.Context, tables []*Table, types []UserType, st State) error {
	rl := st.Reload
	if r.ReloadToken != "" && (rl == nil || rl.Token != r.ReloadToken) {
		next := &Reload{Token: r.ReloadToken, Tables: map[string]Position{}}
		if rl != nil {
			for name, p := range rl.Tables {
				next.Tables[name] = p
			}
		}
		for _, name := range r.ReloadTables {
			next.Tables[name] = nil
		}
		rl = next
	}
	if rl == nil {
		return nil
	}
	byName := make(map[string]*Table, len(tables))
	for _, t := range tables {
		byName[t.QualifiedSource()] = t
	}
	var todo []*Table
	for name, p := range rl.Tables {
		t := byName[name]
		switch {
		case t == nil:
			r.Log.Warn("a table to reload is no longer selected by the table mappings; not reloaded", "table", name)
			delete(rl.Tables, name)
		case p == nil:
			todo = append(todo, t)
		}
	}
	if len(todo) > 0 {
		if err := r.reloadTables(ctx, todo, types, st, rl); err != nil {
			return err
		}
	}
	r.floors = map[*Table]Position{}
	for name, p := range rl.Tables {
		if t := byName[name]; t != nil && p != nil {
			r.floors[t] = p
		}
	}
	return nil
}

func (r *Replicator) reloadTables(ctx context.Context, todo []*Table, types []UserType, st State, rl *Reload) error {
	// The request is stored before the target tables are touched: a
	// replicator stopped from here on finishes it when it starts again.
	st.Reload = rl
	if err := r.Target.SaveState(ctx, r.Task, st); err != nil {
		return fmt.Errorf("store the reload request: %w", err)
	}
	names := make([]string, len(todo))
	for i, t := range todo {
		names[i] = t.QualifiedSource()
		ts := r.Stats.Table(t.SourceSchema, t.SourceName)
		ts.FullLoadRows.Store(0)
		ts.LoadStarted.Store(0)
		ts.LoadFinished.Store(0)
		ts.SetState(StateBeforeLoad)
	}
	r.Log.Info("reloading tables", "task", r.Task, "tables", names)
	at, err := r.Source.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("open a snapshot to reload tables: %w", err)
	}
	defer r.Source.EndSnapshot(context.WithoutCancel(ctx))
	// A reload replaces the rows whatever the prep mode says: with
	// DO_NOTHING the old rows would stay beside the new ones.
	mode := r.Settings.FullLoadSettings.TargetTablePrepMode
	if mode == PrepDoNothing {
		mode = PrepTruncateBeforeLoad
	}
	if err := r.Target.PrepareTables(ctx, types, todo, mode); err != nil {
		return fmt.Errorf("prepare the tables to reload: %w", err)
	}
	began := time.Now()
	var rows atomic.Int64
	if err := r.copyTables(ctx, todo, &rows); err != nil {
		return err
	}
	if err := r.Source.EndSnapshot(ctx); err != nil {
		return err
	}
	if mode == PrepDropAndCreate {
		if err := r.Target.FinishTables(ctx, todo, *r.Settings.SluiceSettings.CreateSecondaryIndexes); err != nil {
			return fmt.Errorf("create constraints and indexes of the reloaded tables: %w", err)
		}
	}
	if err := r.syncSequences(ctx, todo); err != nil {
		return err
	}
	for _, n := range names {
		rl.Tables[n] = at
	}
	if err := r.Target.SaveState(ctx, r.Task, st); err != nil {
		return fmt.Errorf("store the end of the reload: %w", err)
	}
	r.Log.Info("tables reloaded", "task", r.Task, "tables", names, "rows", rows.Load(), "position", at, "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

// skipped returns the reloaded tables whose copies already hold the
// transaction that begins with c, nil if none.
func (r *Replicator) skipped(c *Change) map[*Table]bool {
	var skip map[*Table]bool
	for t, at := range r.floors {
		if c.Position != nil && c.Position.Compare(at) < 0 {
			if skip == nil {
				skip = map[*Table]bool{}
			}
			skip[t] = true
		}
	}
	return skip
}

// Retries of the change stream after passing faults, and the wait between
// them, which doubles up to maxRetryWait.
const (
	maxRetries   = 10
	firstRetry   = 500 * time.Millisecond
	maxRetryWait = 30 * time.Second
)

// streamRetrying runs the change stream and, after a passing fault, resumes
// it from the target's position. A stream that ran a while before failing
// starts its retry count over.
func (r *Replicator) streamRetrying(ctx context.Context, tables []*Table, from Position) error {
	wait, tries := firstRetry, 0
	for {
		began := time.Now()
		err := r.stream(ctx, tables, from)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !Retryable(err) {
			return err
		}
		if time.Since(began) > maxRetryWait {
			wait, tries = firstRetry, 0
		}
		if tries++; tries > maxRetries {
			return fmt.Errorf("giving up after %d retries: %w", maxRetries, err)
		}
		r.Log.Warn("change stream interrupted; resuming from the target's position", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryWait)
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
	}
}

// tables lists the selected tables and gives them their target names.
func (r *Replicator) tables(ctx context.Context) ([]*Table, []UserType, error) {
	tables, types, err := r.Source.Tables(ctx, r.Rules.Selected)
	if err != nil {
		return nil, nil, fmt.Errorf("list source tables: %w", err)
	}
	if len(tables) == 0 {
		return nil, nil, fmt.Errorf("%w: check the selection rules' schema-name and table-name (names are case-sensitive; %% is the only wildcard)", ErrNothingSelected)
	}
	for _, t := range tables {
		r.mapTable(t)
		ts := r.Stats.Table(t.SourceSchema, t.SourceName)
		ts.EstimatedRows.Store(t.EstimatedRows)
		for _, w := range t.Warnings {
			ts.Warn(w)
			r.Log.Warn(w, "table", t.QualifiedSource())
		}
	}
	return tables, types, nil
}

func (r *Replicator) mapTable(t *Table) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.SourceName
	}
	m := r.Rules.Map(t.SourceSchema, t.SourceName, names, r.Settings.TargetMetadata.TargetSchema)
	t.Schema, t.Name = m.TargetSchema, m.TargetTable
	renamed := map[string]bool{}
	for i, cm := range m.Columns {
		t.Columns[i].Name = cm.Target
		t.Columns[i].Removed = cm.Removed
		if cm.Removed || cm.Target != cm.Source {
			renamed[cm.Source] = true
		}
	}
	for _, i := range t.Key {
		if t.Columns[i].Removed {
			t.Warnings = append(t.Warnings, fmt.Sprintf("key column %s is removed by a remove-column rule: updates and deletes match rows by the remaining key columns", t.Columns[i].SourceName))
		}
	}
	for i := range t.Partitions {
		r.mapPartition(t.Schema, &t.Partitions[i])
	}
	for i := range t.Sequences {
		if t.Sequences[i].Owned {
			t.Sequences[i].Schema = t.Schema
		}
	}
	if len(renamed) > 0 {
		t.Indexes, t.Constraints = r.dropRenamed(t, renamed)
	}
}

// dropRenamed leaves out the indexes and constraints whose definitions name a
// renamed or removed column: their SQL would not match the target's columns.
func (r *Replicator) dropRenamed(t *Table, renamed map[string]bool) ([]Index, []Constraint) {
	var idx []Index
	for _, ix := range t.Indexes {
		if mentions(ix.Def, renamed) {
			t.Warnings = append(t.Warnings, fmt.Sprintf("index %s is not created: it uses a renamed or removed column", ix.Name))
			continue
		}
		idx = append(idx, ix)
	}
	var cons []Constraint
	for _, c := range t.Constraints {
		if mentions(c.Def, renamed) {
			t.Warnings = append(t.Warnings, fmt.Sprintf("constraint %s is not created: it uses a renamed or removed column", c.Name))
			continue
		}
		cons = append(cons, c)
	}
	return idx, cons
}

func (r *Replicator) mapPartition(schema string, p *Partition) {
	m := r.Rules.Map(p.SourceSchema, p.SourceName, nil, r.Settings.TargetMetadata.TargetSchema)
	p.Schema, p.Name = m.TargetSchema, m.TargetTable
	for i := range p.Partitions {
		r.mapPartition(schema, &p.Partitions[i])
	}
}

// fullLoad copies the tables in a snapshot that is consistent with the
// returned change-stream position.
func (r *Replicator) fullLoad(ctx context.Context, tables []*Table, types []UserType) (_ Position, err error) {
	r.Stats.setPhase("full-load")
	ctx, span := otel.Tracer(traceScope).Start(ctx, spanFullLoad, trace.WithAttributes(dbAttributes(ctx, nil)...))
	defer func() { endSpan(span, err) }()
	start, err := r.Source.Prepare(ctx, tables, PrepareOptions{Snapshot: true, Capture: r.Type != FullLoad})
	if err != nil {
		return nil, err
	}
	if err := r.Target.SaveState(ctx, r.Task, State{Phase: PhaseFullLoad, Position: start}); err != nil {
		return nil, fmt.Errorf("store the full-load state: %w", err)
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
	if err := r.Target.FinishTables(ctx, tables, *r.Settings.SluiceSettings.CreateSecondaryIndexes); err != nil {
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
	if err := r.Target.SaveState(ctx, r.Task, State{Phase: phase, Position: start, Reload: done}); err != nil {
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
			ts.LoadStarted.CompareAndSwap(0, time.Now().UnixNano())
			ts.SetState(StateLoading)
			span := spans[c.Table].start(gctx, tracer, c)
			n, err := r.copyChunk(gctx, c)
			if err != nil {
				ts.SetState(StateError)
				err = fmt.Errorf("copy %s (chunk %d of %d): %w", c.Table.QualifiedSource(), c.Index+1, c.Count, err)
				endSpan(span, err)
				return err
			}
			ts.FullLoadRows.Add(n)
			rows.Add(n)
			if left[c.Table].Add(-1) == 0 {
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

func (r *Replicator) syncSequences(ctx context.Context, tables []*Table) error {
	seqs, err := r.Source.SequenceValues(ctx, tables)
	if err != nil {
		return fmt.Errorf("read source sequences: %w", err)
	}
	if err := r.Target.SetSequences(ctx, seqs); err != nil {
		return fmt.Errorf("set target sequences: %w", err)
	}
	return nil
}

// stream runs the change stream from position from until ctx ends.
func (r *Replicator) stream(ctx context.Context, tables []*Table, from Position) error {
	ap, err := r.Target.Applier(ctx, r.Task, tables, ApplyOptions{
		Batch:       r.Settings.TargetMetadata.BatchApplyEnabled,
		MemoryLimit: int64(r.Settings.ChangeProcessingTuning.BatchApplyMemoryLimit) << 20,
	}, r.Stats)
	if err != nil {
		return fmt.Errorf("open the applier: %w", err)
	}
	defer oneProcessor()()
	// The applier outlives a stop request so it can finish what it holds.
	applyCtx := context.WithoutCancel(ctx)
	defer ap.Close(applyCtx)
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
	g.Go(func() error { return r.apply(applyCtx, buf, ap) })
	err = g.Wait()
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
		ts := m.r.Stats.Table(t.SourceSchema, t.SourceName)
		ts.SetState(StateCompleted)
	}
	return m.next.Emit(ctx, c)
}

// keep says whether c touches a table whose copy does not already hold it,
// leaving a truncate only the tables that do not.
func keep(c *Change, skip map[*Table]bool) bool {
	if c.Op != OpTruncate {
		return !skip[c.Table]
	}
	var left []*Table
	for _, t := range c.Tables {
		if !skip[t] {
			left = append(left, t)
		}
	}
	c.Tables = left
	return len(left) > 0
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

// The replicator's spans: the full load, each table's copy in it, and each
// target transaction of the change stream (a group of source
// transactions). They carry the semantic conventions' db.* attributes of
// the target when the context names it (WithTraceTarget), and these of
// Sluice's own.
const (
	traceScope    = "github.com/sluicedb/sluice/runtime"
	spanFullLoad  = "sluice.full_load"
	spanLoadTable = "sluice.load_table"
	spanCommit    = "sluice.commit"

	rowsKey         = attribute.Key("sluice.rows")         // rows a table's copy loaded
	changesKey      = attribute.Key("sluice.changes")      // row changes and DDLs a target transaction applied
	transactionsKey = attribute.Key("sluice.transactions") // source transactions it grouped
)

// DBName names a database the way the OpenTelemetry semantic conventions
// do: System is db.system.name (postgresql, mysql, mariadb) and Database is
// the database a PostgreSQL endpoint connects to. MySQL has none: its
// databases are the schemas.
type DBName struct {
	System, Database string
}

// Namespace is the db.namespace of a schema: database|schema on
// PostgreSQL, the schema itself (a database) on MySQL and MariaDB. An empty
// schema gives the PostgreSQL database alone.
func (d DBName) Namespace(schema string) string {
	switch {
	case d.System != semconv.DBSystemNamePostgreSQL.Value.AsString() || d.Database == "":
		return schema
	case schema == "":
		return d.Database
	}
	return d.Database + "|" + schema
}

type traceTargetKey struct{}

// WithTraceTarget returns a copy of ctx that names the target database in
// the spans of a replicator run with it; without it they carry no db.*
// attributes.
func WithTraceTarget(ctx context.Context, target DBName) context.Context {
	return context.WithValue(ctx, traceTargetKey{}, target)
}

// dbAttributes are the db.* attributes of a span that writes table t of
// the target named in ctx, or several tables when t is nil.
func dbAttributes(ctx context.Context, t *Table) []attribute.KeyValue {
	d, ok := ctx.Value(traceTargetKey{}).(DBName)
	if !ok {
		return nil
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameKey.String(d.System)}
	schema := ""
	if t != nil {
		schema = t.Schema
		attrs = append(attrs, semconv.DBCollectionName(t.Name))
	}
	if ns := d.Namespace(schema); ns != "" {
		attrs = append(attrs, semconv.DBNamespace(ns))
	}
	return attrs
}

// tableSpan is a table's copy, from its first chunk to its last.
type tableSpan struct {
	once sync.Once
	span trace.Span
}

// start starts the span when the table's first chunk starts, and returns
// it.
func (s *tableSpan) start(ctx context.Context, tracer trace.Tracer, c Chunk) trace.Span {
	s.once.Do(func() {
		_, s.span = tracer.Start(ctx, spanLoadTable, trace.WithAttributes(dbAttributes(ctx, c.Table)...))
	})
	return s.span
}

// endSpan ends span, with err as its error if not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
