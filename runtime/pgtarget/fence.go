package pgtarget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Fencing. A replicator that holds its replication's lease claims the
// target once, before it reads the position: it ends the sessions of the
// replicators that held the lease before it (a frozen one may keep a
// transaction open with row locks), and stores its token with the
// position. From then on every position write first checks the stored
// token under a row lock (sluice_fence), so an older replicator that wakes
// up cannot commit: its transaction fails and it stops.

// fenceCode is the SQLSTATE sluice_fence raises.
const fenceCode = "SL001"

// sessionName is the application_name of a replicator's sessions: the
// token first, so the name still parses when PostgreSQL cuts it to 63
// bytes.
func sessionName(task string, fence int64) string {
	return "sluice " + strconv.FormatInt(fence, 10) + " " + task
}

// olderSession says whether application_name name belongs to task's
// replicator with a token below fence.
func olderSession(name, task string, fence int64) bool {
	rest, ok := strings.CutPrefix(name, "sluice ")
	if !ok {
		return false
	}
	tok, owner, ok := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(tok, 10, 64)
	if !ok || err != nil || n >= fence {
		return false
	}
	if len(name) >= 63 { // cut by the server: the task's start is all there is
		return strings.HasPrefix(task, owner)
	}
	return owner == task
}

func (t *Target) fenceFunc() string { return ident(t.cfg.ControlSchema, "sluice_fence") }

// fenceCheck is the statement that fails unless the stored token is at
// most $2 for task $1.
func (t *Target) fenceCheck() string { return "SELECT " + t.fenceFunc() + "($1, $2)" }

// ensureFenceFunc creates sluice_fence in the control schema.
func (t *Target) ensureFenceFunc(ctx context.Context) error {
	var exists bool
	if err := t.pool.QueryRow(ctx, "SELECT to_regprocedure($1) IS NOT NULL", t.fenceFunc()+"(text, bigint)").Scan(&exists); err != nil || exists {
		return err
	}
	_, err := t.pool.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s(p_task text, p_token bigint) RETURNS void LANGUAGE plpgsql AS $sluice$
DECLARE cur bigint;
BEGIN
  SELECT fence INTO cur FROM %s WHERE task_name = p_task FOR UPDATE;
  IF cur > p_token THEN
    RAISE EXCEPTION 'replication task %% was taken over by a newer replicator (fencing token %% > %%): this replicator lost its lease and stops', p_task, cur, p_token
      USING ERRCODE = '%s';
  END IF;
END $sluice$`, t.fenceFunc(), t.stateTable(), fenceCode))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "XX000" && strings.Contains(pe.Message, "concurrently") {
		return nil // another replicator on this target created it at the same time
	}
	return err
}

// claim makes the target task's: once per Target, and only under a lease.
func (t *Target) claim(ctx context.Context, task string) error {
	if t.cfg.Fence == 0 {
		return nil
	}
	t.claimMu.Lock()
	defer t.claimMu.Unlock()
	if t.claimed {
		return nil
	}
	if err := t.ensureFenceFunc(ctx); err != nil {
		return fmt.Errorf("create the fencing function %s: %w", t.fenceFunc(), err)
	}
	rows, err := t.pool.Query(ctx, "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'sluice %' AND pid <> pg_backend_pid()")
	if err != nil {
		return err
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		var name string
		if err := rows.Scan(&pid, &name); err != nil {
			return err
		}
		if olderSession(name, task, t.cfg.Fence) {
			pids = append(pids, pid)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pid := range pids {
		// Our own role's sessions: no privilege beyond the login needed.
		if _, err := t.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			return fmt.Errorf("end session %d of the replicator this one replaces: %w", pid, err)
		}
	}
	var stored int64
	err = t.pool.QueryRow(ctx, fmt.Sprintf(`INSERT INTO %s AS st (task_name, phase, fence) VALUES ($1, '', $2)
ON CONFLICT (task_name) DO UPDATE SET fence = EXCLUDED.fence WHERE st.fence <= EXCLUDED.fence
RETURNING fence`, t.stateTable()), task, t.cfg.Fence).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("replication task %s was taken over by a newer replicator: this one's fencing token %d is older than the target's; it stops", task, t.cfg.Fence)
	}
	if err != nil {
		return fmt.Errorf("claim the target for task %s: %w", task, err)
	}
	t.claimed = true
	return nil
}
