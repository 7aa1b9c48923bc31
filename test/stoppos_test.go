package test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// countRows returns the rows of table in db that match where.
func countRows(t *testing.T, db, table, where string) int64 {
	t.Helper()
	var n int64
	if err := testenv.Connect(t, db).QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAPIStopPositions: CdcStopPosition commit_time ends the replication
// exactly before the first transaction committed after the time — what was
// committed before is on the target, nothing after — and a resume carries
// on from there; server_time stops it when the clock passes.
func TestAPIStopPositions(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "stoppos", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE events (id int PRIMARY KEY, phase text NOT NULL)`)
	testenv.Exec(t, f.src, `INSERT INTO events SELECT g, 'loaded' FROM generate_series(1, 100) g`)

	stopAt := time.Now().UTC().Add(10 * time.Second).Truncate(time.Second)
	_, err := c.StartReplication(ctx, &dms.StartReplicationInput{
		ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication"),
		CdcStopPosition: aws.String("commit_time:" + stopAt.Format("2006-01-02T15:04:05")),
	})
	if err != nil {
		t.Fatalf("StartReplication with commit_time: %v", err)
	}
	f.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	if time.Now().After(stopAt.Add(-2 * time.Second)) {
		t.Skip("the replication took too long to start for this machine: the stop time is already close")
	}
	testenv.Exec(t, f.src, `INSERT INTO events SELECT g, 'before' FROM generate_series(101, 150) g`)
	testenv.Exec(t, f.src, `UPDATE events SET phase = 'before, updated' WHERE id <= 10`)
	time.Sleep(time.Until(stopAt.Add(1100 * time.Millisecond)))
	testenv.Exec(t, f.src, `INSERT INTO events SELECT g, 'after' FROM generate_series(151, 170) g`)
	testenv.Exec(t, f.src, `DELETE FROM events WHERE id <= 5`)

	r := f.waitFor(t, c, "stopped at the commit time", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if got := aws.ToString(r.StopReason); got != "Stop Reason STOPPED_AT_COMMIT_TIME" {
		t.Fatalf("StopReason = %q, want Stop Reason STOPPED_AT_COMMIT_TIME", got)
	}
	if n := countRows(t, f.dst, "events", "true"); n != 150 {
		t.Errorf("target holds %d rows at the stop, want the 150 committed before the stop time", n)
	}
	if n := countRows(t, f.dst, "events", "phase = 'before, updated'"); n != 10 {
		t.Errorf("target holds %d updated rows, want 10", n)
	}
	if n := countRows(t, f.dst, "events", "phase = 'after'"); n != 0 {
		t.Errorf("target holds %d rows committed after the stop time, want none", n)
	}

	// Resume: the transactions after the stop time arrive; server_time then
	// stops the replication when the clock passes.
	serverStop := time.Now().UTC().Add(8 * time.Second)
	_, err = c.StartReplication(ctx, &dms.StartReplicationInput{
		ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("resume-processing"),
		CdcStopPosition: aws.String("server_time:" + serverStop.Format(time.RFC3339)),
	})
	if err != nil {
		t.Fatalf("StartReplication resume-processing with server_time: %v", err)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "events")
	r = f.waitFor(t, c, "stopped at the server time", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if got := aws.ToString(r.StopReason); got != "Stop Reason STOPPED_AT_SERVER_TIME" {
		t.Fatalf("StopReason = %q, want Stop Reason STOPPED_AT_SERVER_TIME", got)
	}
	if time.Now().Before(serverStop) {
		t.Fatalf("stopped before the server time %s", serverStop)
	}
	testenv.Exec(t, f.src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`)
}
