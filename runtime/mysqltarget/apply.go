package mysqltarget

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

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
}

// Applier implements runtime.Target. Batch apply is not built for MySQL
// targets: changes are applied in commit order either way.
func (t *Target) Applier(ctx context.Context, task string, _ []*runtime.Table, _ runtime.ApplyOptions, stats *runtime.Stats) (runtime.Applier, error) {
	conn, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.ensureControl(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return &applier{t: t, conn: conn, task: task, stats: stats}, nil
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
			if _, err := a.exec("DELETE FROM " + tableName(t)); err != nil {
				return fmt.Errorf("empty %s: %w", tableName(t), err)
			}
		}
		return nil
	}
	sql, err := a.statement(c)
	if err != nil || sql == "" {
		return err
	}
	n, err := a.exec(sql)
	if err != nil {
		return fmt.Errorf("apply a %s to %s: %w", c.Op, tableName(c.Table), err)
	}
	if (c.Op == runtime.OpUpdate || c.Op == runtime.OpDelete) && n == 0 {
		ts := a.stats.Table(c.Table.SourceSchema, c.Table.SourceName)
		ts.ApplyMisses.Add(1)
		ts.Warn(fmt.Sprintf("%s found no matching row on the target", c.Op))
	}
	return nil
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
		if keyed(t) {
			// Changes applied again after a restart, or over a later
			// snapshot's rows, land on the row they made.
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
	if _, err := a.exec(sql); err != nil {
		return fmt.Errorf("apply %q to the target: %w", d.Statement, err)
	}
	a.open = false // MySQL committed what was open
	if d.Old != nil {
		a.t.mu.Lock()
		delete(a.t.cols, d.Old)
		a.t.mu.Unlock()
	}
	return nil
}

// Commit implements runtime.Applier.
func (a *applier) Commit(ctx context.Context, pos runtime.Position, _ time.Time) error {
	if err := a.begin(); err != nil {
		return err
	}
	if err := a.t.checkFence(a.conn, a.task); err != nil {
		_ = a.Rollback(ctx)
		return err
	}
	var b strings.Builder
	if err := a.t.upsertState(&b, a.task, runtime.PhaseCDC, pos, nil, true); err != nil {
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
	return nil
}

// Durable implements runtime.Applier.
func (a *applier) Durable(context.Context) (runtime.Position, error) { return a.durable, nil }

// Rollback implements runtime.Applier.
func (a *applier) Rollback(context.Context) error {
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
