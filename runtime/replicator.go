package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluicedb/sluice/runtime/mapping"
)

// Replication types, as DMS names them.
const (
	FullLoad       = "full-load"
	CDC            = "cdc"
	FullLoadAndCDC = "full-load-and-cdc"
)

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
	// TargetTimeout bounds each call of the applier to the target (the
	// target endpoint's ExecuteTimeout); DefaultTargetTimeout when 0.
	TargetTimeout time.Duration
	// Validation, when set, compares the target with the source after the
	// full load and while the change stream runs (EnableValidation);
	// Touched records the rows the stream writes, for it.
	Validation Validation
	Touched    *Touched
	// ValidateTables are tables, by source name, to validate again
	// without touching them (ReloadReplicationTables validate-only);
	// they are validated first.
	ValidateTables []string

	// floors are the positions of the reloaded tables' copies: the stream
	// skips their transactions committed before them.
	floors map[*Table]Position
	// repairs carries validation's repairs to the applier (RepairRows).
	repairs chan *Repair
	// suspended are the tables ErrorBehavior took out of the replication;
	// careful, when set, is where the stream applies change by change up
	// to (applyLoop.careful).
	suspended suspensions
	careful   Position
	refusedAt time.Time // when the target last refused a change
	// loaded records the running full load's copied tables; nil outside
	// a full load.
	loaded *loadRecord
	// loadTableErr orders the full load's chunks that meet a table error.
	loadTableErr sync.Mutex
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
	if r.repairs == nil {
		r.repairs = make(chan *Repair)
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	// A passing fault before the change stream runs (a source or target
	// unreachable at the start, a connection reset in the middle of a
	// copy) starts the replication again from what the target holds: a
	// full load goes on with the tables it has not yet copied. The stream
	// restarts itself (streamRetrying).
	rs := r.restarts()
	for {
		began := time.Now()
		err := r.run(ctx)
		if err == nil || ctx.Err() != nil || !Retryable(err) {
			return err
		}
		// A snapshot the attempt held is of no use to the next.
		_ = r.Source.EndSnapshot(context.WithoutCancel(ctx))
		wait, gaveUp := rs.next(time.Since(began), err)
		if gaveUp != nil {
			return gaveUp
		}
		r.Log.Warn("replication interrupted; starting again from what the target holds", "task", r.Task, "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// run is one attempt at Run.
func (r *Replicator) run(ctx context.Context) error {
	tables, types, err := r.tables(ctx)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		r.Log.Warn("the table mappings select no table; with ErrorBehavior.FailOnNoTablesCaptured false the full load finishes having loaded nothing", "task", r.Task)
		return nil
	}
	if r.Settings.ValidationSettings.ValidationOnly {
		// Nothing is written: the tables are compared as they are.
		r.Log.Info("validation only: comparing the tables, writing nothing", "task", r.Task)
		return r.validateOnce(ctx, tables)
	}
	st, err := r.Target.State(ctx, r.Task)
	if err != nil {
		return fmt.Errorf("read the stored state of %s on the target: %w", r.Task, err)
	}
	if r.Reload {
		r.Log.Info("reload-target: ignoring the stored position and starting over", "task", r.Task, "phase", st.Phase)
		st = State{}
	}
	r.suspend(st.Suspended)
	r.Stats.Restore(st.Counts)
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
			if !r.suspended.has(t) {
				r.Stats.Table(t.SourceSchema, t.SourceName).SetState(StateCompleted)
			}
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
		r.Stats.Restore(nil)
	default:
		if st.Phase == PhaseFullLoad && loadedTables(st) != nil {
			from, err = r.resumeFullLoad(ctx, tables, types, st)
		} else {
			if st.Phase == PhaseFullLoad {
				r.Log.Warn("an earlier full load did not finish, and no table of it was complete; loading again", "task", r.Task)
			}
			from, err = r.fullLoad(ctx, tables, types)
		}
		if err != nil && ctx.Err() != nil {
			r.Log.Info("stopped during the full load; the next start loads the tables not yet copied", "task", r.Task)
			return nil
		}
		if err != nil {
			return err
		}
		if r.Type == FullLoad {
			return r.validateOnce(ctx, tables)
		}
	}
	r.Stats.setPhase(PhaseCDC)
	defer r.validateBeside(ctx, tables)()
	return r.streamRetrying(ctx, tables, from)
}

// validated orders the tables to validate: the ones a validate-only
// request names first, then, with EnableValidation, the rest.
func (r *Replicator) validated(tables []*Table) []*Table {
	named := map[string]bool{}
	for _, n := range r.ValidateTables {
		named[n] = true
	}
	var first, rest []*Table
	for _, t := range tables {
		switch {
		case named[t.QualifiedSource()]:
			first = append(first, t)
		case r.Settings.ValidationSettings.EnableValidation || r.Settings.ValidationSettings.ValidationOnly:
			rest = append(rest, t)
		}
	}
	return append(first, rest...)
}

// validateOnce validates the tables when no change stream follows (a
// full load alone, ValidationOnly).
func (r *Replicator) validateOnce(ctx context.Context, tables []*Table) error {
	if r.Validation == nil {
		return nil
	}
	if err := r.Validation.Tables(ctx, r.validated(tables)); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// validateBeside runs validation beside the change stream: the tables
// whole, then (with EnableValidation) the rows the stream writes. Its failures are the tables'
// (their ValidationState), never the replication's. The returned
// function stops it and waits for it.
func (r *Replicator) validateBeside(ctx context.Context, tables []*Table) (stop func()) {
	if r.Validation == nil {
		return func() {}
	}
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Validation.Tables(vctx, r.validated(tables)); err != nil && vctx.Err() == nil {
			r.Log.Warn("validation stopped", "task", r.Task, "error", err)
			return
		}
		_ = r.Validation.Follow(vctx, tables)
	}()
	return func() {
		cancel()
		<-done
	}
}

// tables lists the selected tables and gives them their target names.
func (r *Replicator) tables(ctx context.Context) ([]*Table, []UserType, error) {
	tables, types, err := r.Source.Tables(ctx, r.Rules.Selected)
	if err != nil {
		return nil, nil, fmt.Errorf("list source tables: %w", err)
	}
	if len(tables) == 0 && !r.Settings.ErrorBehavior.failOnNoTables() && r.Type == FullLoad {
		return nil, nil, nil
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

// suspend takes the tables stored as suspended out of the replication,
// in its statistics too.
func (r *Replicator) suspend(stored map[string]string) {
	r.suspended.set(stored)
	for name, why := range stored {
		schema, table, _ := strings.Cut(name, ".")
		r.Stats.Table(schema, table).SetError(why)
	}
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

// syncSequences carries the source's sequence values to the target, at the
// end of a load and when the change stream stops: the stream does not carry
// nextval calls.
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
