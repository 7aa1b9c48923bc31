package test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// TestServeRestartAdopts: a replication outlives the server that started
// it. After the server is killed with SIGKILL, or stopped gracefully, the
// next server finds the replication running, launches its replicator
// again, and the changes written while no server ran arrive, counted once.
func TestServeRestartAdopts(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "adopt", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id serial PRIMARY KEY, name text)`)
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 3000) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'cdc ' || g FROM generate_series(1, 100) g`)
	waitInserts := func(c *dms.Client, want int64) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			ts := apiTableStats(t, c, f.configArn, "items")
			if ts.Inserts == want && ts.FullLoadRows == 3000 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("items statistics: %d inserts, %d full-load rows; want %d and 3000", ts.Inserts, ts.FullLoadRows, want)
			}
		}
	}
	waitInserts(c, 100)

	// A crash of the server: its replicator is stopped with it.
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'while down ' || g FROM generate_series(1, 200) g`)
	testenv.Exec(t, f.src, `UPDATE items SET name = name || '!' WHERE id <= 50`)
	s = s.restart(t)
	c = s.client(testSecret)
	if st := aws.ToString(f.describe(t, c).Status); st != "running" {
		t.Fatalf("after a server crash the replication is %s, want running", st)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	waitInserts(c, 300)

	// A graceful restart leaves it running as well.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'between ' || g FROM generate_series(1, 10) g`)
	s = s.restart(t)
	c = s.client(testSecret)
	if st := aws.ToString(f.describe(t, c).Status); st != "running" {
		t.Fatalf("after a graceful server stop the replication is %s, want running", st)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	waitInserts(c, 310)
	var active int
	if err := testenv.Connect(t, f.src).QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND active`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active != 1 {
		t.Fatalf("%d active slots on the source, want the one replicator's", active)
	}

	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	testenv.Exec(t, f.src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`)
}
