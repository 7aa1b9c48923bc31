package pgtarget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// The control tables of refused changes, with DMS's names and columns, so
// DMS users' queries read them as they are. Tables are named by their
// source names, as the replication's statistics name them.
func (t *Target) exceptionsTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_apply_exceptions")
}

func (t *Target) suspendedTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_suspended_tables")
}

func (t *Target) conflictFunc() string { return ident(t.cfg.ControlSchema, "sluice_conflict") }

// ensureExceptions creates the tables and sluice_conflict, which a
// pipelined update or delete calls when it finds no row: the transaction
// stops there with runtime.ConflictCode and is applied again change by
// change, where the conflict is handled by its policy.
func (t *Target) ensureExceptions(ctx context.Context) error {
	_, err := t.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  "TASK_NAME" varchar(128) NOT NULL,
  "TABLE_OWNER" varchar(128) NOT NULL,
  "TABLE_NAME" varchar(128) NOT NULL,
  "ERROR_TIME" timestamp NOT NULL,
  "STATEMENT" text NOT NULL,
  "ERROR" text NOT NULL);
CREATE TABLE IF NOT EXISTS %s (
  "SERVER_NAME" varchar(128) NOT NULL,
  "TASK_NAME" varchar(128) NOT NULL,
  "TABLE_OWNER" varchar(128) NOT NULL,
  "TABLE_NAME" varchar(128) NOT NULL,
  "SUSPEND_REASON" text NOT NULL,
  "SUSPEND_TIMESTAMP" timestamp NOT NULL,
  PRIMARY KEY ("TASK_NAME", "TABLE_OWNER", "TABLE_NAME"))`, t.exceptionsTable(), t.suspendedTable()))
	if err != nil && !concurrently(err) {
		return fmt.Errorf("create the control tables %s and %s: %w", t.exceptionsTable(), t.suspendedTable(), err)
	}
	var exists bool
	if err := t.pool.QueryRow(ctx, "SELECT to_regprocedure($1) IS NOT NULL", t.conflictFunc()+"()").Scan(&exists); err != nil || exists {
		return err
	}
	_, err = t.pool.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS int LANGUAGE plpgsql AS $sluice$
BEGIN
  RAISE EXCEPTION 'the change found no row on the target' USING ERRCODE = '%s';
END $sluice$`, t.conflictFunc(), runtime.ConflictCode))
	if err != nil && !concurrently(err) {
		return fmt.Errorf("create the function %s: %w", t.conflictFunc(), err)
	}
	return nil
}

// concurrently says whether err is another session creating the same
// object at the same time, which leaves it made.
func concurrently(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07" || pe.Code == "XX000" && strings.Contains(pe.Message, "concurrently"))
}

const insertException = `INSERT INTO %s VALUES ($1, $2, $3, now() AT TIME ZONE 'UTC', $4, $5)`

// RecordExceptions implements runtime.Target.
func (t *Target) RecordExceptions(ctx context.Context, task string, clear []*runtime.Table, xs []runtime.Exception) error {
	if err := t.ensureControl(ctx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, tb := range clear {
		b.Queue(`DELETE FROM `+t.exceptionsTable()+` WHERE "TASK_NAME" = $1 AND "TABLE_OWNER" = $2 AND "TABLE_NAME" = $3`, task, tb.SourceSchema, tb.SourceName)
	}
	for _, x := range xs {
		b.Queue(fmt.Sprintf(insertException, t.exceptionsTable()), task, x.Table.SourceSchema, x.Table.SourceName, x.Statement, x.Error)
	}
	if b.Len() == 0 {
		return nil
	}
	return t.pool.SendBatch(ctx, b).Close()
}

// suspended reads the tables stored as suspended for task.
func (t *Target) suspended(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, task string) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT "TABLE_OWNER" || '.' || "TABLE_NAME", "SUSPEND_REASON" FROM `+t.suspendedTable()+` WHERE "TASK_NAME" = $1`, task)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var name, why string
		if err := rows.Scan(&name, &why); err != nil {
			return nil, err
		}
		out[name] = why
	}
	if len(out) == 0 {
		out = nil
	}
	return out, rows.Err()
}

// saveSuspended replaces task's suspended tables by those of st, in tx.
func (t *Target) saveSuspended(ctx context.Context, tx pgx.Tx, task string, st runtime.State) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+t.suspendedTable()+` WHERE "TASK_NAME" = $1`, task); err != nil {
		return err
	}
	for name, why := range st.Suspended {
		schema, table, _ := strings.Cut(name, ".")
		if _, err := tx.Exec(ctx, fmt.Sprintf(upsertSuspended, t.suspendedTable()), task, schema, table, why); err != nil {
			return err
		}
	}
	return nil
}

const upsertSuspended = `INSERT INTO %s VALUES ('sluice', $1, $2, $3, $4, now() AT TIME ZONE 'UTC')
ON CONFLICT ("TASK_NAME", "TABLE_OWNER", "TABLE_NAME") DO UPDATE SET "SUSPEND_REASON" = EXCLUDED."SUSPEND_REASON", "SUSPEND_TIMESTAMP" = EXCLUDED."SUSPEND_TIMESTAMP"`

// Except implements runtime.Applier.
func (a *applier) Except(ctx context.Context, x runtime.Exception) error {
	a.begin()
	a.batch.ExecParams(fmt.Sprintf(insertException, a.t.exceptionsTable()),
		[][]byte{[]byte(a.task), []byte(x.Table.SourceSchema), []byte(x.Table.SourceName), []byte(x.Statement), []byte(x.Error)}, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	return a.send(ctx)
}

// Suspend implements runtime.Applier.
func (a *applier) Suspend(ctx context.Context, tb *runtime.Table, why string) error {
	a.begin()
	a.batch.ExecParams(fmt.Sprintf(upsertSuspended, a.t.suspendedTable()),
		[][]byte{[]byte(a.task), []byte(tb.SourceSchema), []byte(tb.SourceName), []byte(why)}, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	return a.send(ctx)
}

// Try implements runtime.Applier. The change runs alone under a
// savepoint: a refusal undoes it only, and the statement the target
// refused is known.
func (a *applier) Try(ctx context.Context, c *runtime.Change) error {
	a.begin()
	if a.net != nil {
		if err := a.flushNet(ctx, nil, nil); err != nil {
			return err
		}
	}
	a.batch.ExecParams("SAVEPOINT sluice_try", nil, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	if err := a.send(ctx); err != nil {
		return err
	}
	a.trying = true
	defer func() { a.trying = false }()
	var err error
	if c.Op == runtime.OpDDL {
		err = a.ddl(ctx, c.DDL)
	} else {
		err = a.queue(ctx, c)
		if err == nil {
			err = a.send(ctx)
		}
	}
	if err == nil && a.missed {
		a.missed = false
		return &runtime.RowError{Change: c, Kind: runtime.KindConflict, Statement: a.literalStatement(c)}
	}
	if err == nil {
		a.batch.ExecParams("RELEASE SAVEPOINT sluice_try", nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		return a.send(ctx)
	}
	k := runtime.Classify(err)
	if k == runtime.KindNone {
		return err
	}
	a.batch, a.queued = pgconn.Batch{}, a.queued[:0]
	a.open = true // the savepoint keeps the transaction
	if rerr := a.pg.Exec(ctx, "ROLLBACK TO SAVEPOINT sluice_try").Close(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return &runtime.RowError{Change: c, Kind: k, Statement: a.literalStatement(c), Err: err}
}

// literalStatement is c's statement with its values in place, as a person
// would run it, for awsdms_apply_exceptions.
func (a *applier) literalStatement(c *runtime.Change) string {
	switch c.Op {
	case runtime.OpDDL:
		return c.DDL.Statement
	case runtime.OpTruncate:
		names := make([]string, len(c.Tables))
		for i, t := range c.Tables {
			names[i] = tableName(t)
		}
		return "TRUNCATE " + strings.Join(names, ", ")
	}
	sql, args := statement(c, a.mode(c.Op), formShown, a.t.conflictFunc())
	params := (&rowStatement{sql: sql, args: args}).params(c)
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		j := i + 1
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		if sql[i] != '$' || j == i+1 {
			b.WriteByte(sql[i])
			continue
		}
		n, _ := strconv.Atoi(sql[i+1 : j])
		switch {
		case n < 1 || n > len(params):
			b.WriteString(sql[i:j])
		case params[n-1] == nil:
			b.WriteString("NULL")
		default:
			b.WriteString(pgtext.Literal(string(params[n-1])))
		}
		i = j - 1
	}
	return b.String()
}
