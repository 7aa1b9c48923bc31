package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// captureLeft returns the replication slots and publications on the
// PostgreSQL source db, as "slot name" and "publication name" lines.
func captureLeft(t *testing.T, db string) []string {
	t.Helper()
	conn := testenv.Connect(t, "postgres")
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE database = $1`, db)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	src := testenv.Connect(t, db)
	defer src.Close(context.Background())
	prows, err := src.Query(context.Background(), `SELECT 'publication ' || pubname FROM pg_publication`)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var s string
		if err := prows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestAPIDeleteDropsSlot: deleting a replication config drops the slot
// and publications its replication made on the PostgreSQL source, so a
// deleted config cannot pin the source's WAL until its disk is full, even
// when the source endpoint is deleted right after.
func TestAPIDeleteDropsSlot(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "dropslot", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, f.src, `INSERT INTO items SELECT g, 'v' FROM generate_series(1, 100) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	left := captureLeft(t, f.src)
	if !strings.Contains(strings.Join(left, ","), "slot sluice_") || !strings.Contains(strings.Join(left, ","), "publication sluice_") {
		t.Fatalf("a running replication's source holds %q, want its slot and publication", left)
	}
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped and deprovisioned", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "stopped" && r.ProvisionData != nil && aws.ToString(r.ProvisionData.ProvisionState) == "deprovisioned"
	})
	// Stopped, it keeps them: a resume needs them.
	if got := captureLeft(t, f.src); len(got) != len(left) {
		t.Fatalf("a stopped replication's source holds %q, want %q: a resume needs them", got, left)
	}
	if _, err := c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("DeleteReplicationConfig: %v", err)
	}
	// The endpoint can go at once, as a script deleting a stack does: the
	// drop keeps what it needs of it.
	if _, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String(f.srcArn)}); err != nil {
		t.Fatalf("DeleteEndpoint of the source right after its config: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got := captureLeft(t, f.src); len(got) > 0; got = captureLeft(t, f.src) {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after DeleteReplicationConfig the source still holds %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAPIRetentionWarning: the WAL a stopped replication's slot holds on
// its source is measured, and past SluiceSettings.WalRetentionWarningMB
// FailureMessages says so (with what to do); once the replication runs
// again and reads past it, the warning goes.
func TestAPIRetentionWarning(t *testing.T) {
	s := startServer(t, "SLUICE_RETENTION_CHECK=300ms")
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "walheld", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	if _, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn),
		ReplicationSettings: aws.String(`{"SluiceSettings":{"WalRetentionWarningMB":4}}`)}); err != nil {
		t.Fatalf("ModifyReplicationConfig: %v", err)
	}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	// 8 MB of changes nobody reads.
	testenv.Exec(t, f.src, `INSERT INTO items SELECT g, repeat('x', 400) FROM generate_series(1, 20000) g`)
	warned := func(r types.Replication) bool {
		return strings.Contains(strings.Join(r.FailureMessages, ";"), "replication slot sluice_walheld_cfg holds")
	}
	r := f.waitFor(t, c, "a retention warning", 30*time.Second, warned)
	if msg := strings.Join(r.FailureMessages, ";"); !strings.Contains(msg, "MiB of WAL (warning above 4.0 MiB)") || !strings.Contains(msg, "delete its config") {
		t.Errorf("the warning %q does not say how much and what to do", msg)
	}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("resume-processing")}); err != nil {
		t.Fatalf("StartReplication resume-processing: %v", err)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	deadline := time.Now().Add(time.Minute)
	conn := testenv.Connect(t, f.src)
	for {
		// The slot's restart position moves at the source's next
		// checkpoint once the changes are confirmed.
		if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
		if r := f.describe(t, c); !warned(r) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the warning stays after the replication read past the WAL: %q", f.describe(t, c).FailureMessages)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestLostSlotNeedsReloadTarget: a slot the source invalidated while the
// replication was stopped (it held more than max_slot_wal_keep_size) ends
// the next start with the cause and reload-target as the fix, not with a
// stream error, and reload-target starts over from a new slot.
func TestLostSlotNeedsReloadTarget(t *testing.T) {
	src, dst := testenv.NewPGDatabase(t, "lostslot_src"), testenv.NewPGDatabase(t, "lostslot_dst")
	testenv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, pad text)`)
	testenv.Exec(t, src, `INSERT INTO items VALUES (1, 'first')`)
	tk := testenv.PGTask(t, "lostslot", "full-load-and-cdc", src, dst)
	r := testenv.Start(t, tk)
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	admin := testenv.Connect(t, "postgres")
	ctx := context.Background()
	for _, q := range []string{"ALTER SYSTEM SET max_slot_wal_keep_size = '32MB'", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"ALTER SYSTEM RESET max_slot_wal_keep_size", "SELECT pg_reload_conf()"} {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Error(err)
			}
		}
	})
	// More WAL than the slot may hold, then the checkpoints that remove it.
	conn := testenv.Connect(t, src)
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		var status string
		if err := admin.QueryRow(ctx, "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'sluice_lostslot'").Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "lost" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot is %q after 2 minutes of WAL, not lost", status)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO items SELECT g, repeat(md5(g::text), 25) FROM generate_series(%d, %d) g", 10+i*20000, 10+i*20000+19999)); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SELECT pg_switch_wal()", "CHECKPOINT"} {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := task.Run(ctx, tk, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "invalidated") || !strings.Contains(err.Error(), "reload-target") {
		t.Fatalf("a start on a lost slot: %v; want the cause and reload-target", err)
	}
	tk.StartReplicationType = "reload-target"
	r = testenv.Start(t, tk)
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
}

// TestIdleSourceDoesNotPinWAL: a replication whose database stays idle
// while another database on the same cluster writes does not keep that WAL:
// the stream confirms the server's WAL end, and the heartbeat
// (HeartbeatEnable) keeps the idle database's own WAL moving.
func TestIdleSourceDoesNotPinWAL(t *testing.T) {
	src, dst := testenv.NewPGDatabase(t, "idlewal_src"), testenv.NewPGDatabase(t, "idlewal_dst")
	busy := testenv.NewPGDatabase(t, "idlewal_busy")
	testenv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, src, `INSERT INTO items VALUES (1, 'idle')`)
	testenv.Exec(t, busy, `CREATE TABLE churn (id int PRIMARY KEY, pad text)`)
	tk := testenv.PGTask(t, "idlewal", "full-load-and-cdc", src, dst)
	tk.SourceEndpoint.PostgreSQLSettings = &task.PostgreSQLSettings{HeartbeatEnable: true, HeartbeatFrequency: 1}
	r := testenv.Start(t, tk)
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	admin := testenv.Connect(t, "postgres")
	ctx := context.Background()
	held := func() int64 {
		var n int64
		if err := admin.QueryRow(ctx, `SELECT coalesce(pg_current_wal_lsn() - restart_lsn, -1)::bigint FROM pg_replication_slots WHERE slot_name = 'sluice_idlewal'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// About 64 MB of WAL in the other database.
	testenv.Exec(t, busy, `INSERT INTO churn SELECT g, repeat(md5(g::text), 12) FROM generate_series(1, 150000) g`)
	if n := held(); n < 32<<20 {
		t.Fatalf("the slot holds %d bytes right after the busy database wrote: the test wrote too little to tell", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The restart position moves on the running-transactions record a
		// checkpoint writes, once the stream confirmed past it.
		testenv.Exec(t, busy, "CHECKPOINT")
		n := held()
		if n >= 0 && n < 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the busy database wrote, the idle replication's slot still holds %d bytes of WAL", n)
		}
		time.Sleep(time.Second)
	}
	// And the idle replication still follows.
	testenv.Exec(t, src, `INSERT INTO items VALUES (2, 'still followed')`)
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
}
