package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/test/testenv"
)

// replicators returns the pids of the replicator processes serve runs.
func replicators(t *testing.T, s *server) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		line := string(b)
		i := strings.LastIndexByte(line, ')')
		if i < 0 || !strings.Contains(line[:i], "(sluice-replica") {
			continue
		}
		f := strings.Fields(line[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == s.cmd.Process.Pid {
			pid, _ := strconv.Atoi(strings.Fields(line)[0])
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	line := string(b)
	f := strings.Fields(line[strings.LastIndexByte(line, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// TestLeaseTakeover freezes a running replicator with SIGSTOP while the
// source keeps changing. Its lease lapses, the sweep launches a new
// replicator, which takes the lease with a higher fencing token, ends the
// frozen one's sessions and claims the target. Woken with SIGCONT, the old
// one finds its lease gone and its writes refused, and exits. Then the new
// one is killed with SIGKILL and replaced too, at once: the launcher saw it
// die. The target ends equal to the source, its statistics count every
// change once, and the replication never stopped running.
func TestLeaseTakeover(t *testing.T) {
	s := startServer(t, "SLUICE_LEASE_TTL=2s")
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "lease", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id serial PRIMARY KEY, name text, n int NOT NULL DEFAULT 0)`)
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 2000) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})

	// A writer changes the source throughout.
	stopWriter := testenv.StartWriter(t, f.src, func(ctx context.Context, conn *pgx.Conn, i int) error {
		if _, err := conn.Exec(ctx, `INSERT INTO items (name) VALUES ($1)`, "w"+strconv.Itoa(i)); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `UPDATE items SET n = n + 1 WHERE id = $1`, 1+i%2000); err != nil {
			return err
		}
		time.Sleep(3 * time.Millisecond)
		return nil
	})

	waitPIDs := func(what string, ok func([]int) bool) []int {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if pids := replicators(t, s); ok(pids) {
				return pids
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replicators now %v", what, replicators(t, s))
			}
		}
	}
	old := waitPIDs("one replicator", func(p []int) bool { return len(p) == 1 })[0]
	time.Sleep(time.Second) // changes in flight when it freezes
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer syscall.Kill(old, syscall.SIGKILL) //nolint:errcheck // only if the test fails before SIGCONT
	pids := waitPIDs("a second replicator after the lease lapsed", func(p []int) bool { return len(p) == 2 })
	t.Logf("new replicator %d took over %.1f s after the old one froze", pids, time.Since(frozen).Seconds())

	// The new one replicates: rows written now reach the target.
	testenv.Exec(t, f.src, `INSERT INTO items (name) VALUES ('after the takeover')`)
	dst := testenv.Connect(t, f.dst)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		if err := dst.QueryRow(ctx, `SELECT count(*) FROM items WHERE name = 'after the takeover'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new replicator did not apply a change within 30 s")
		}
	}
	var fence int64
	if err := dst.QueryRow(ctx, `SELECT fence FROM awsdms_txn_state WHERE task_name = $1`, f.configID).Scan(&fence); err != nil {
		t.Fatal(err)
	}
	if fence < 2 {
		t.Fatalf("fencing token on the target is %d, want the second lease's (≥ 2)", fence)
	}

	// Woken up, the old replicator must stop without writing.
	if err := syscall.Kill(old, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); alive(old); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the old replicator %d still runs 20 s after SIGCONT", old)
		}
	}
	// A replicator killed outright is replaced the same way, and counts
	// as neither a failure nor a stop.
	second := replicators(t, s)
	if len(second) != 1 {
		t.Fatalf("replicators after the old one exited: %v, want one", second)
	}
	if err := syscall.Kill(second[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	third := waitPIDs("a replicator replacing the killed one", func(p []int) bool { return len(p) == 1 && p[0] != second[0] })
	took := time.Since(killed)
	t.Logf("replicator %d replaced the killed one %.1f s after the kill", third[0], took.Seconds())
	// The launcher saw it die: its lease is released and a new one
	// launched at once, not after the lease (2 s here) lapses.
	if took >= 2*time.Second {
		t.Errorf("the killed replicator was replaced after %s, as late as its lease lapsing", took.Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	stopWriter()
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	// The statistics count every change once across the freeze, the
	// takeover and the kill: every insert and update came through CDC.
	var rows, updates int64
	if err := testenv.Connect(t, f.src).QueryRow(ctx, `SELECT count(*), sum(n) FROM items`).Scan(&rows, &updates); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "items")
		if ts.FullLoadRows == 2000 && ts.Inserts == rows-2000 && ts.Deletes == 0 && ts.Updates == updates {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the takeover and the kill the statistics say full load %d, inserts %d, updates %d, deletes %d; the source had 2000, then %d inserts and %d updates",
				ts.FullLoadRows, ts.Inserts, ts.Updates, ts.Deletes, rows-2000, updates)
		}
	}
	r := f.describe(t, c)
	if st := aws.ToString(r.Status); st != "running" {
		t.Fatalf("status %s after the takeover, want running (failure: %v)", st, r.FailureMessages)
	}
	logs, _ := filepath.Glob(filepath.Join(filepath.Dir(s.log), "*.log"))
	var all strings.Builder
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		all.Write(b)
	}
	if !strings.Contains(all.String(), "lost the replication's lease") && !strings.Contains(all.String(), "taken over by a newer replicator") {
		t.Fatalf("no replicator log says the old one lost its lease or was fenced off:\n%s", all.String())
	}
	for _, line := range strings.Split(all.String(), "\n") {
		if strings.Contains(line, "lease") || strings.Contains(line, "taken over") || strings.Contains(line, "error") {
			t.Log(line)
		}
	}
	if got := replicators(t, s); len(got) != 1 || got[0] != third[0] {
		t.Fatalf("replicators after the takeover: %v, want one new one", got)
	}
}
