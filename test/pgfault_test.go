package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/test/testenv"
)

// TestPgbenchTerminatedSessions cuts the replicator's sessions on the source
// (the walsender) and on the target (the applier) while pgbench writes: the
// replicator must resume from the target's position by itself and end with
// the target equal to the source.
func TestPgbenchTerminatedSessions(t *testing.T) {
	t.Parallel()
	src := testenv.NewPGDatabase(t, "fault_src")
	dst := testenv.NewPGDatabase(t, "fault_dst")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := pgbench(ctx, src, "-i", "-s", "1", "-q").CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	r := testenv.Start(t, testenv.PGTask(t, "fault", runtime.FullLoadAndCDC, src, dst))
	testenv.WaitEqual(t, r, src, dst, 60*time.Second, pgbenchTables...)

	bench := pgbench(ctx, src, "-c", "2", "-T", "10", "-n")
	out := &strings.Builder{}
	bench.Stdout, bench.Stderr = out, out
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	admin := testenv.Connect(t, "postgres")
	killed := 0
	for i := 0; i < 4; i++ {
		time.Sleep(2 * time.Second)
		var n int
		err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'sluice' AND datname IN ($1, $2) AND pid <> pg_backend_pid()`, src, dst).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		killed += n
	}
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	if killed < 4 {
		t.Fatalf("terminated %d replicator sessions, want at least 4: the test did not cut anything", killed)
	}
	testenv.WaitEqual(t, r, src, dst, 60*time.Second, pgbenchTables...)
	if err := r.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
