package pgtarget

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgsnap"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

var (
	_ runtime.SnapshotReader  = (*Target)(nil)
	_ runtime.FailureRecorder = (*Target)(nil)
)

// Dialect implements runtime.SnapshotReader.
func (t *Target) Dialect() string { return runtime.DialectPostgres }

// ReadSnapshots implements runtime.SnapshotReader. The first session
// reads the task's stored position in its snapshot, which holds exactly
// the data committed with it, and exports the snapshot to the others.
// Sessions are connections of their own: they stay open for a whole
// table's comparison, which must not starve the applier's pool.
func (t *Target) ReadSnapshots(ctx context.Context, task string, n int, _ bool) ([]runtime.ReadSession, error) {
	out := make([]runtime.ReadSession, 0, n)
	var name string
	var pos runtime.Position
	for i := range n {
		conn, err := pgx.ConnectConfig(ctx, t.pool.Config().ConnConfig.Copy())
		if err != nil {
			runtime.CloseSessions(ctx, out)
			return nil, fmt.Errorf("connect to the target: %w", err)
		}
		sess, err := pgsnap.Begin(ctx, conn, name)
		if err == nil && i == 0 {
			pos, err = t.snapshotPosition(ctx, conn, task)
			if err == nil && n > 1 {
				err = conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&name)
			}
		}
		if err != nil {
			conn.Close(ctx)
			runtime.CloseSessions(ctx, out)
			return nil, fmt.Errorf("target snapshot: %w", err)
		}
		sess.Pos = pos
		out = append(out, sess)
	}
	return out, nil
}

// snapshotPosition reads task's stored position in the open snapshot; nil
// when none is stored (a target only validated, never written).
func (t *Target) snapshotPosition(ctx context.Context, conn *pgx.Conn, task string) (runtime.Position, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass("+pgtext.Literal(t.stateTable())+") IS NOT NULL").Scan(&exists); err != nil || !exists {
		return nil, err
	}
	var cp *string
	err := conn.QueryRow(ctx, "SELECT checkpoint FROM "+t.stateTable()+" WHERE task_name = $1", task).Scan(&cp)
	if err == pgx.ErrNoRows || (err == nil && cp == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return runtime.ParsePosition(*cp)
}

func (t *Target) failuresTable() string {
	return ident(t.cfg.ControlSchema, "awsdms_validation_failures_v1")
}

// RecordValidationFailures implements runtime.FailureRecorder. The table
// has DMS's columns, so DMS users' queries read it as they are.
func (t *Target) RecordValidationFailures(ctx context.Context, task string, clear []string, fs []runtime.ValidationFailure) error {
	if err := t.ensureFailures(ctx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, name := range clear {
		b.Queue(`DELETE FROM `+t.failuresTable()+` WHERE "TASK_NAME" = $1 AND "TABLE_OWNER" || '.' || "TABLE_NAME" = $2`, task, name)
	}
	for _, f := range fs {
		b.Queue(`INSERT INTO `+t.failuresTable()+` VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			task, f.TableOwner, f.TableName, f.Time.UTC(), f.KeyType, f.Key, f.FailureType, f.Details)
	}
	if b.Len() == 0 {
		return nil
	}
	return t.pool.SendBatch(ctx, b).Close()
}

// ensureFailures creates awsdms_validation_failures_v1 once; tables
// validated side by side would otherwise race to create it.
func (t *Target) ensureFailures(ctx context.Context) error {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	if t.failReady {
		return nil
	}
	_, err := t.pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
  "TASK_NAME" varchar(128) NOT NULL,
  "TABLE_OWNER" varchar(128) NOT NULL,
  "TABLE_NAME" varchar(128) NOT NULL,
  "FAILURE_TIME" timestamp NOT NULL,
  "KEY_TYPE" varchar(128) NOT NULL,
  "KEY" text NOT NULL,
  "FAILURE_TYPE" varchar(128) NOT NULL,
  "DETAILS" text NOT NULL)`, ident(t.cfg.ControlSchema), t.failuresTable()))
	if err != nil {
		return fmt.Errorf("create the control table %s: %w", t.failuresTable(), err)
	}
	t.failReady = true
	return nil
}
