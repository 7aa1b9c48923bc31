package mysqltarget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
)

// applier writes the change stream on one session: each row change is a
// statement, sent as it comes, in a transaction that commits with the
// position it reaches.
type applier struct {
	t       *Target
	conn    *client.Conn
	task    string
	stats   *runtime.Stats
	open    bool
	durable runtime.Position
	opts    runtime.ApplyOptions
	// skipped counts, per table, the conflicts skipped in the open
	// transaction, counted once it commits.
	skipped map[*runtime.Table]int64
}

// Applier implements runtime.Target. Batch apply is not built for MySQL
// targets: changes are applied in commit order either way.
func (t *Target) Applier(ctx context.Context, task string, _ []*runtime.Table, opts runtime.ApplyOptions, stats *runtime.Stats) (runtime.Applier, error) {
	conn, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.ensureControl(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return &applier{t: t, conn: conn, task: task, stats: stats, opts: opts}, nil
}

func (a *applier) exec(sql string) (uint64, error) {
	r, err := a.conn.Execute(sql)
	if err != nil {
		return 0, err
	}
	return r.AffectedRows, nil
}

func (a *applier) begin() error {
	if a.open {
		return nil
	}
	if _, err := a.exec("BEGIN"); err != nil {
		return fmt.Errorf("begin a target transaction: %w", err)
	}
	a.open = true
	return nil
}

// Apply implements runtime.Applier.
func (a *applier) Apply(ctx context.Context, c *runtime.Change) error {
	if err := a.begin(); err != nil {
		return err
	}
	if c.Op == runtime.OpDDL {
		return a.ddl(c.DDL)
	}
	if c.Op == runtime.OpTruncate {
		for _, t := range c.Tables {
			// TRUNCATE commits on its own in MySQL; DELETE stays in the
			// transaction with the position.
			sql := "DELETE FROM " + tableName(t)
			if _, err := a.exec(sql); err != nil {
				return refused(c, sql, fmt.Errorf("empty %s: %w", tableName(t), err))
			}
		}
		return nil
	}
	sql, err := a.statement(c)
	if err != nil || sql == "" {
		return err
	}
	n, err := a.exec(sql)
	conflict := (c.Op == runtime.OpUpdate || c.Op == runtime.OpDelete) && err == nil && n == 0
	if err != nil && c.Op == runtime.OpInsert && keyed(c.Table) && errorCode(err) == 1062 {
		// A duplicate: of the key (a conflict), or of another unique
		// index (the row is refused).
		if conflict, err = a.keyTaken(c, err); err != nil {
			return err
		}
	}
	if err != nil {
		return refused(c, sql, fmt.Errorf("apply the %s to %s: %w", c.Op, tableName(c.Table), err))
	}
	if !conflict {
		return nil
	}
	mode := a.opts.Deletes
	switch c.Op {
	case runtime.OpInsert:
		mode = a.opts.Inserts
	case runtime.OpUpdate:
		mode = a.opts.Updates
	}
	if mode == runtime.ConflictReport {
		return &runtime.RowError{Change: c, Kind: runtime.KindConflict, Statement: sql}
	}
	if a.skipped == nil {
		a.skipped = map[*runtime.Table]int64{}
	}
	a.skipped[c.Table]++
	a.stats.Table(c.Table.SourceSchema, c.Table.SourceName).Warn(fmt.Sprintf("%s found the target's row not as the source had it (ErrorBehavior IGNORE_RECORD)", c.Op))
	return nil
}

// errorCode is err's MySQL error number, 0 if it has none.
func errorCode(err error) uint16 {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code
	}
	return 0
}

// keyTaken tells a duplicate of an insert's key (a conflict: true, nil)
// from a duplicate of another unique index (the insert's error, dup).
func (a *applier) keyTaken(c *runtime.Change, dup error) (bool, error) {
	cols, err := a.t.columns(c.Table)
	if err != nil {
		return false, err
	}
	var b strings.Builder
	b.WriteString("SELECT 1 FROM " + tableName(c.Table) + " WHERE ")
	for j, i := range c.Table.Key {
		if j > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(ident(c.Table.Columns[i].Name) + " <=> ")
		if err := literal(&b, cols[i], c.New[i]); err != nil {
			return false, err
		}
	}
	r, err := a.conn.Execute(b.String() + " LIMIT 1")
	if err != nil {
		return false, err
	}
	if r.RowNumber() > 0 {
		return true, nil
	}
	return false, dup
}

func keyed(t *runtime.Table) bool { return len(t.Key) > 0 && t.Identity == runtime.IdentityKey }

// statement builds the SQL of one row change with its values as literals.
func (a *applier) statement(c *runtime.Change) (string, error) {
	t := c.Table
	cols, err := a.t.columns(t)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	lit := func(i int, v runtime.Value) error {
		if err := literal(&b, cols[i], v); err != nil {
			return fmt.Errorf("%s.%s: %w", t.QualifiedSource(), t.Columns[i].SourceName, err)
		}
		return nil
	}
	where := func(row runtime.Row) error {
		b.WriteString(" WHERE ")
		first := true
		each := t.Key
		if !keyed(t) {
			each = t.Copied()
		}
		for _, i := range each {
			if row[i].Kind == runtime.Unchanged {
				continue
			}
			if !first {
				b.WriteString(" AND ")
			}
			first = false
			// <=> matches NULLs too: a keyless row is found by its image.
			b.WriteString(ident(t.Columns[i].Name) + " <=> ")
			if err := lit(i, row[i]); err != nil {
				return err
			}
		}
		if !keyed(t) {
			b.WriteString(" LIMIT 1")
		}
		return nil
	}
	switch c.Op {
	case runtime.OpInsert:
		b.WriteString("INSERT INTO " + tableName(t) + " (")
		copied := t.Copied()
		for j, i := range copied {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ident(t.Columns[i].Name))
		}
		b.WriteString(") VALUES (")
		for j, i := range copied {
			if j > 0 {
				b.WriteString(", ")
			}
			if err := lit(i, c.New[i]); err != nil {
				return "", err
			}
		}
		b.WriteString(")")
		if keyed(t) && a.opts.Inserts == runtime.ConflictOverwrite {
			// ErrorBehavior's INSERT_RECORD: the row with the key is
			// overwritten.
			b.WriteString(" ON DUPLICATE KEY UPDATE ")
			for j, i := range copied {
				if j > 0 {
					b.WriteString(", ")
				}
				n := ident(t.Columns[i].Name)
				b.WriteString(n + " = VALUES(" + n + ")")
			}
		}
	case runtime.OpUpdate:
		b.WriteString("UPDATE " + tableName(t) + " SET ")
		n := 0
		for _, i := range t.Copied() {
			if c.New[i].Kind == runtime.Unchanged {
				continue
			}
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(ident(t.Columns[i].Name) + " = ")
			if err := lit(i, c.New[i]); err != nil {
				return "", err
			}
		}
		if n == 0 {
			return "", nil
		}
		old := c.Old
		if old == nil {
			old = c.New
		}
		if err := where(old); err != nil {
			return "", err
		}
	case runtime.OpDelete:
		b.WriteString("DELETE FROM " + tableName(t))
		if err := where(c.Old); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// ddl changes a target table as the source's changed. MySQL commits DDL
// on its own, so the transaction so far is committed first, and the
// position with it is not moved: after a crash the DDL may be seen again,
// and the statements are written to be harmless then.
func (a *applier) ddl(d *runtime.DDL) error {
	var old string
	if d.Old != nil {
		old = tableName(d.Old)
	}
	var sql string
	switch d.Kind {
	case runtime.DDLAddColumn:
		c := d.New.Columns[d.Column]
		if c.Removed {
			return nil
		}
		tc, err := targetColumn(d.New, c)
		if err != nil {
			return err
		}
		sql = "ALTER TABLE " + old + " ADD COLUMN IF NOT EXISTS " + ident(c.Name) + " " + tc.decl
		if c.NotNull {
			sql += " NOT NULL"
		}
		if d.Default.Kind == runtime.Text {
			var b strings.Builder
			if err := literal(&b, tc, d.Default); err != nil {
				return err
			}
			sql += " DEFAULT " + b.String()
		}
	case runtime.DDLDropColumn:
		c := d.Old.Columns[d.Column]
		if c.Removed {
			return nil
		}
		sql = "ALTER TABLE " + old + " DROP COLUMN IF EXISTS " + ident(c.Name)
	case runtime.DDLAlterColumn:
		was, now := d.Old.Columns[d.OldColumn], d.New.Columns[d.Column]
		if now.Removed {
			return nil
		}
		tc, err := targetColumn(d.New, now)
		if err != nil {
			return err
		}
		sql = "ALTER TABLE " + old + " CHANGE COLUMN IF EXISTS " + ident(was.Name) + " " + ident(now.Name) + " " + tc.decl
		if now.NotNull {
			sql += " NOT NULL"
		}
	case runtime.DDLRenameTable:
		if _, err := a.exec("CREATE DATABASE IF NOT EXISTS " + ident(d.New.Schema)); err != nil {
			return err
		}
		sql = "RENAME TABLE " + old + " TO " + tableName(d.New)
	case runtime.DDLDropTable:
		sql = "DROP TABLE IF EXISTS " + old
	case runtime.DDLCreateTable:
		if _, err := a.exec("CREATE DATABASE IF NOT EXISTS " + ident(d.New.Schema)); err != nil {
			return err
		}
		create, err := a.t.createTable(d.New)
		if err != nil {
			return err
		}
		sql = strings.Replace(create, "CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
	}
	// MySQL commits what is open before DDL, whether the DDL then
	// succeeds or not.
	a.open = false
	if _, err := a.exec(sql); err != nil {
		return refused(&runtime.Change{Op: runtime.OpDDL, DDL: d}, d.Statement, fmt.Errorf("apply %q to the target: %w", d.Statement, err))
	}
	if d.Old != nil {
		a.t.mu.Lock()
		delete(a.t.cols, d.Old)
		a.t.mu.Unlock()
	}
	return nil
}

// Commit implements runtime.Applier.
func (a *applier) Commit(ctx context.Context, pos runtime.Position, _ time.Time, counts map[string]runtime.Counts) error {
	if err := a.begin(); err != nil {
		return err
	}
	if err := a.t.checkFence(a.conn, a.task); err != nil {
		_ = a.Rollback(ctx)
		return err
	}
	var b strings.Builder
	if err := a.t.upsertState(&b, a.task, runtime.State{Phase: runtime.PhaseCDC, Position: pos, Counts: counts}, true); err != nil {
		return err
	}
	if _, err := a.exec(b.String()); err != nil {
		_ = a.Rollback(ctx)
		return fmt.Errorf("store the position: %w", err)
	}
	if _, err := a.exec("COMMIT"); err != nil {
		a.open = false
		return fmt.Errorf("commit: %w", err)
	}
	a.open = false
	// InnoDB's commit is durable when it returns (with its default
	// innodb_flush_log_at_trx_commit = 1).
	a.durable = pos
	for tb, n := range a.skipped {
		a.stats.Table(tb.SourceSchema, tb.SourceName).ApplyMisses.Add(n)
	}
	clear(a.skipped)
	return nil
}

// Durable implements runtime.Applier.
func (a *applier) Durable(context.Context) (runtime.Position, error) { return a.durable, nil }

// Rollback implements runtime.Applier.
func (a *applier) Rollback(context.Context) error {
	clear(a.skipped)
	if !a.open {
		return nil
	}
	a.open = false
	_, err := a.exec("ROLLBACK")
	return err
}

// Close implements runtime.Applier.
func (a *applier) Close(ctx context.Context) error {
	_ = a.Rollback(ctx)
	return a.conn.Close()
}
