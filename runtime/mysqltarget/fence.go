package mysqltarget

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/client"
)

// Fencing (see pgtarget's fence.go for the scheme): the position row
// carries the token of the lease the replicator holds; every position
// write first reads the stored token under a row lock and refuses to go
// on when a newer replicator has written a higher one. Unlike on
// PostgreSQL, a frozen predecessor's sessions are not ended: its open
// transaction's row locks hold the successor's writes until the server
// drops the session (wait_timeout) or the predecessor wakes up and stops.

// ensureColumn adds a column to control tables made before it existed
// (MySQL 8 has no ADD COLUMN IF NOT EXISTS).
func (t *Target) ensureColumn(conn *client.Conn, name, def string) error {
	r, err := conn.Execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'awsdms_txn_state' AND COLUMN_NAME = ?", t.cfg.ControlSchema, name)
	if err != nil {
		return err
	}
	if n, _ := r.GetInt(0, 0); n > 0 {
		return nil
	}
	_, err = conn.Execute("ALTER TABLE " + t.stateTable() + " ADD COLUMN " + name + " " + def)
	return err
}

// checkFence fails when a replicator with a newer token has written the
// task's position. It locks the row until the transaction ends.
func (t *Target) checkFence(conn *client.Conn, task string) error {
	if t.cfg.Fence == 0 {
		return nil
	}
	r, err := conn.Execute("SELECT fence FROM "+t.stateTable()+" WHERE task_name = ? FOR UPDATE", task)
	if err != nil {
		return err
	}
	if r.RowNumber() == 0 {
		return nil
	}
	if cur, _ := r.GetInt(0, 0); cur > t.cfg.Fence {
		return fmt.Errorf("replication task %s was taken over by a newer replicator (fencing token %d > %d): this replicator lost its lease and stops", task, cur, t.cfg.Fence)
	}
	return nil
}

// claim stores the replicator's token with the task's position, unless a
// newer one is there.
func (t *Target) claim(conn *client.Conn, task string) error {
	if t.cfg.Fence == 0 {
		return nil
	}
	if _, err := conn.Execute("BEGIN"); err != nil {
		return err
	}
	err := t.checkFence(conn, task)
	if err == nil {
		_, err = conn.Execute("INSERT INTO "+t.stateTable()+" (task_name, phase, updated_at, fence) VALUES (?, '', UTC_TIMESTAMP(6), ?) ON DUPLICATE KEY UPDATE fence = VALUES(fence)", task, t.cfg.Fence)
	}
	if err != nil {
		_, _ = conn.Execute("ROLLBACK")
		return err
	}
	_, err = conn.Execute("COMMIT")
	return err
}
