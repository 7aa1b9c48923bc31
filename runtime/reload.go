package runtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

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

// reloadTables copies todo at a new snapshot and stores, in st, the
// position each copy holds. It is the full load's sequence for a few tables,
// but the change capture stays as it is and the target keeps the rest.
func (r *Replicator) reloadTables(ctx context.Context, todo []*Table, types []UserType, st State, rl *Reload) error {
	// The request is stored before the target tables are touched: a
	// replicator stopped from here on finishes it when it starts again.
	st.Reload = rl
	st.Suspended = r.suspended.all()
	st.Counts = r.Stats.Counts()
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
	// A suspended table comes back with its new copy, which starts with
	// no refused rows; one the copy refuses suspends it again.
	if err := r.Target.RecordExceptions(ctx, r.Task, todo, nil); err != nil {
		return fmt.Errorf("clear awsdms_apply_exceptions of the reloaded tables: %w", err)
	}
	for _, n := range names {
		r.suspended.lift(n)
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
	st.Suspended = r.suspended.all()
	st.Counts = r.Stats.Counts()
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
