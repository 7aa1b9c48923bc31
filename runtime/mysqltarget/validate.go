package mysqltarget

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
)

var (
	_ runtime.SnapshotReader  = (*Target)(nil)
	_ runtime.FailureRecorder = (*Target)(nil)
)

// Dialect implements runtime.SnapshotReader.
func (t *Target) Dialect() string { return runtime.DialectMySQL }

// ReadSnapshots implements runtime.SnapshotReader. MySQL cannot share a
// snapshot between sessions: each has its own, and reads the task's stored
// position in it, which holds exactly the data committed with it.
func (t *Target) ReadSnapshots(ctx context.Context, task string, n int, _ bool) ([]runtime.ReadSession, error) {
	out := make([]runtime.ReadSession, 0, n)
	fail := func(err error) ([]runtime.ReadSession, error) {
		runtime.CloseSessions(ctx, out)
		return nil, fmt.Errorf("target snapshot: %w", err)
	}
	for range n {
		conn, err := mysqlconn.Connect(ctx, t.cfg.Server, 0)
		if err != nil {
			return fail(err)
		}
		s := &mysqlconn.Snapshot{Conn: conn}
		if err := mysqlconn.BeginSnapshot(conn); err != nil {
			conn.Close()
			return fail(err)
		}
		r, err := conn.Execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'awsdms_txn_state'", t.cfg.ControlSchema)
		if err == nil {
			if has, _ := r.GetInt(0, 0); has > 0 {
				r, err = conn.Execute("SELECT checkpoint FROM "+t.stateTable()+" WHERE task_name = ?", task)
				if err == nil && r.RowNumber() > 0 {
					if cp, _ := r.GetString(0, 0); cp != "" {
						s.Pos, err = runtime.ParsePosition(cp)
					}
				}
			}
		}
		if err != nil {
			conn.Close()
			return fail(err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (t *Target) failuresTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_validation_failures_v1")
}

// RecordValidationFailures implements runtime.FailureRecorder, with DMS's
// columns.
func (t *Target) RecordValidationFailures(ctx context.Context, task string, clear []string, fs []runtime.ValidationFailure) error {
	conn, err := t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + ident(t.cfg.ControlSchema),
		"CREATE TABLE IF NOT EXISTS " + t.failuresTable() + ` (
  TASK_NAME varchar(128) NOT NULL,
  TABLE_OWNER varchar(128) NOT NULL,
  TABLE_NAME varchar(128) NOT NULL,
  FAILURE_TIME datetime(6) NOT NULL,
  KEY_TYPE varchar(128) NOT NULL,
  ` + "`KEY`" + ` longtext NOT NULL,
  FAILURE_TYPE varchar(128) NOT NULL,
  DETAILS longtext NOT NULL) CHARACTER SET utf8mb4`,
	} {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("create the control table %s: %w", t.failuresTable(), err)
		}
	}
	for _, name := range clear {
		if _, err := conn.Execute("DELETE FROM "+t.failuresTable()+" WHERE TASK_NAME = ? AND CONCAT(TABLE_OWNER, '.', TABLE_NAME) = ?", task, name); err != nil {
			return err
		}
	}
	for len(fs) > 0 {
		n := min(len(fs), 200)
		var b strings.Builder
		b.WriteString("INSERT INTO " + t.failuresTable() + " VALUES ")
		for i, f := range fs[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(")
			for j, v := range []string{task, f.TableOwner, f.TableName, f.Time.UTC().Format("2006-01-02 15:04:05.000000"), f.KeyType, f.Key, f.FailureType, f.Details} {
				if j > 0 {
					b.WriteString(", ")
				}
				mysqlconn.WriteLiteral(&b, v)
			}
			b.WriteString(")")
		}
		if _, err := conn.Execute(b.String()); err != nil {
			return fmt.Errorf("record validation failures: %w", err)
		}
		fs = fs[n:]
	}
	return nil
}
