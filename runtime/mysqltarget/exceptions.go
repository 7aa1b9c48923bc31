package mysqltarget

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
)

// The control tables of refused changes, with DMS's names and columns;
// tables are named by their source names.
func (t *Target) exceptionsTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_apply_exceptions")
}

func (t *Target) suspendedTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_suspended_tables")
}

func (t *Target) ensureExceptions(conn *client.Conn) error {
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + t.exceptionsTable() + ` (
  TASK_NAME varchar(128) NOT NULL,
  TABLE_OWNER varchar(128) NOT NULL,
  TABLE_NAME varchar(128) NOT NULL,
  ERROR_TIME datetime(6) NOT NULL,
  STATEMENT longtext NOT NULL,
  ERROR longtext NOT NULL) CHARACTER SET utf8mb4`,
		"CREATE TABLE IF NOT EXISTS " + t.suspendedTable() + ` (
  SERVER_NAME varchar(128) NOT NULL,
  TASK_NAME varchar(128) NOT NULL,
  TABLE_OWNER varchar(128) NOT NULL,
  TABLE_NAME varchar(128) NOT NULL,
  SUSPEND_REASON longtext NOT NULL,
  SUSPEND_TIMESTAMP datetime(6) NOT NULL,
  PRIMARY KEY (TASK_NAME, TABLE_OWNER, TABLE_NAME)) CHARACTER SET utf8mb4`,
	} {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("create the control tables %s and %s: %w", t.exceptionsTable(), t.suspendedTable(), err)
		}
	}
	return nil
}

// exceptionRow is the INSERT of x into awsdms_apply_exceptions.
func (t *Target) exceptionRow(task string, x runtime.Exception) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.exceptionsTable() + " VALUES (")
	for i, v := range []string{task, x.Table.SourceSchema, x.Table.SourceName} {
		if i > 0 {
			b.WriteString(", ")
		}
		mysqlconn.WriteLiteral(&b, v)
	}
	b.WriteString(", UTC_TIMESTAMP(6), ")
	mysqlconn.WriteLiteral(&b, x.Statement)
	b.WriteString(", ")
	mysqlconn.WriteLiteral(&b, x.Error)
	b.WriteString(")")
	return b.String()
}

// suspendRow is the upsert of a suspended table's row.
func (t *Target) suspendRow(task, schema, table, why string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.suspendedTable() + " VALUES ('sluice', ")
	for _, v := range []string{task, schema, table, why} {
		mysqlconn.WriteLiteral(&b, v)
		b.WriteString(", ")
	}
	b.WriteString("UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE SUSPEND_REASON = VALUES(SUSPEND_REASON), SUSPEND_TIMESTAMP = VALUES(SUSPEND_TIMESTAMP)")
	return b.String()
}

// RecordExceptions implements runtime.Target.
func (t *Target) RecordExceptions(ctx context.Context, task string, clear []*runtime.Table, xs []runtime.Exception) error {
	if len(clear) == 0 && len(xs) == 0 {
		return nil
	}
	conn, err := t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := t.ensureControl(conn); err != nil {
		return err
	}
	stmts := []string{"BEGIN"}
	for _, tb := range clear {
		var b strings.Builder
		b.WriteString("DELETE FROM " + t.exceptionsTable() + " WHERE TASK_NAME = ")
		mysqlconn.WriteLiteral(&b, task)
		b.WriteString(" AND TABLE_OWNER = ")
		mysqlconn.WriteLiteral(&b, tb.SourceSchema)
		b.WriteString(" AND TABLE_NAME = ")
		mysqlconn.WriteLiteral(&b, tb.SourceName)
		stmts = append(stmts, b.String())
	}
	for _, x := range xs {
		stmts = append(stmts, t.exceptionRow(task, x))
	}
	for _, q := range append(stmts, "COMMIT") {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("record refused rows in %s: %w", t.exceptionsTable(), err)
		}
	}
	return nil
}

// suspended reads the tables stored as suspended for task.
func (t *Target) suspended(conn *client.Conn, task string) (map[string]string, error) {
	r, err := conn.Execute("SELECT CONCAT(TABLE_OWNER, '.', TABLE_NAME), SUSPEND_REASON FROM "+t.suspendedTable()+" WHERE TASK_NAME = ?", task)
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		why, _ := r.GetString(i, 1)
		if out == nil {
			out = map[string]string{}
		}
		out[name] = why
	}
	return out, nil
}

// saveSuspended are the statements that replace task's suspended tables
// by those of st.
func (t *Target) saveSuspended(task string, st runtime.State) []string {
	var b strings.Builder
	b.WriteString("DELETE FROM " + t.suspendedTable() + " WHERE TASK_NAME = ")
	mysqlconn.WriteLiteral(&b, task)
	out := []string{b.String()}
	for name, why := range st.Suspended {
		schema, table, _ := strings.Cut(name, ".")
		out = append(out, t.suspendRow(task, schema, table, why))
	}
	return out
}

// Except implements runtime.Applier.
func (a *applier) Except(_ context.Context, x runtime.Exception) error {
	if err := a.begin(); err != nil {
		return err
	}
	_, err := a.exec(a.t.exceptionRow(a.task, x))
	return err
}

// Suspend implements runtime.Applier.
func (a *applier) Suspend(_ context.Context, tb *runtime.Table, why string) error {
	if err := a.begin(); err != nil {
		return err
	}
	_, err := a.exec(a.t.suspendRow(a.task, tb.SourceSchema, tb.SourceName, why))
	return err
}

// Try implements runtime.Applier: every change is applied alone already,
// and MySQL undoes a refused statement only, keeping the transaction.
func (a *applier) Try(ctx context.Context, c *runtime.Change) error { return a.Apply(ctx, c) }

// refused turns the error of a change's statement into a *RowError when it
// is the change's (runtime.Classify): the statement alone was undone.
func refused(c *runtime.Change, sql string, err error) error {
	k := runtime.Classify(err)
	if k == runtime.KindNone {
		return err
	}
	return &runtime.RowError{Change: c, Kind: k, Statement: sql, Err: err}
}

// loadWarnings turns the warnings of a LOAD DATA into an error: with LOCAL,
// MySQL and MariaDB load a value that does not fit, or a row a constraint
// refuses, as a warning (cut short, or left out) instead of failing.
func loadWarnings(conn *client.Conn, r *mysql.Result) error {
	if r == nil || r.Warnings == 0 {
		return nil
	}
	w, err := conn.Execute("SHOW WARNINGS LIMIT 20")
	if err != nil {
		return err
	}
	for i := range w.RowNumber() {
		level, _ := w.GetString(i, 0)
		code, _ := w.GetInt(i, 1)
		msg, _ := w.GetString(i, 2)
		if level != "Note" {
			return &mysql.MyError{Code: uint16(code), Message: msg, State: "HY000"}
		}
	}
	if w.RowNumber() == 0 {
		return errors.New("LOAD DATA reported warnings that SHOW WARNINGS does not list")
	}
	return nil // notes only
}
