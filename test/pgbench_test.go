package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/test/testenv"
)

var pgbenchTables = []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}

// process is a sluice-replicator child process.
type process struct {
	cmd    *exec.Cmd
	stats  string
	log    *os.File
	exited chan struct{}
	err    error
}

func startReplicator(t *testing.T, taskFile, dir string) *process {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, "replicator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{stats: filepath.Join(dir, "stats.json"), log: logf}
	p.cmd = exec.Command(replicatorBin, "-task", taskFile, "-stats-file", p.stats)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		logf.Close()
	})
	return p
}

// Err implements testenv.Replication: why the process ended, with its log.
func (p *process) Err() error {
	select {
	case <-p.exited:
		log, _ := os.ReadFile(p.log.Name())
		return fmt.Errorf("sluice-replicator exited (%v); its log:\n%s", p.err, log)
	default:
		return nil
	}
}

// wait waits for the process to end and returns how it ended.
func (p *process) wait() error {
	<-p.exited
	return p.err
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

func (p *process) snapshot(t *testing.T) runtime.Snapshot {
	t.Helper()
	var s runtime.Snapshot
	b, err := os.ReadFile(p.stats)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatalf("read stats: %v", err)
	}
	return s
}

// requireReconciled waits up to 15 s for the statistics of each table to
// account for every row it has on the source, as people reconcile them:
// full-load rows + inserts - deletes = rows. stats reads a table's
// counters from wherever the test sees them (a stats file, a running
// replication, DescribeReplicationTableStatistics).
func requireReconciled(t *testing.T, tables []string, rows func(table string) int64, stats func(table string) (full, ins, del int64, ok bool)) {
	t.Helper()
	want := map[string]int64{}
	for _, tb := range tables {
		want[tb] = rows(tb)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var off []string
		for _, tb := range tables {
			full, ins, del, ok := stats(tb)
			switch {
			case !ok:
				off = append(off, tb+": no statistics")
			case full+ins-del != want[tb]:
				off = append(off, fmt.Sprintf("%s: full load %d + inserts %d - deletes %d = %d, the source has %d rows", tb, full, ins, del, full+ins-del, want[tb]))
			}
		}
		if len(off) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the statistics do not reconcile with the rows:\n%s", strings.Join(off, "\n"))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// snapshotCounts reads a table's counters from statistics snapshots.
func snapshotCounts(snap func() runtime.Snapshot) func(table string) (full, ins, del int64, ok bool) {
	return func(table string) (int64, int64, int64, bool) {
		for _, ts := range snap().Tables {
			if ts.TableName == table {
				return ts.FullLoadRows, ts.Inserts, ts.Deletes, true
			}
		}
		return 0, 0, 0, false
	}
}

// pgCount counts a table's rows in PostgreSQL database db.
func pgCount(t *testing.T, db string) func(table string) int64 {
	conn := testenv.Connect(t, db)
	return func(table string) int64 {
		var n int64
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// apiCounts reads a table's counters with DescribeReplicationTableStatistics.
func apiCounts(t *testing.T, c *dms.Client, arn string) func(table string) (full, ins, del int64, ok bool) {
	return func(table string) (int64, int64, int64, bool) {
		ts := apiTableStats(t, c, arn, table)
		return ts.FullLoadRows, ts.Inserts, ts.Deletes, ts.TableName != nil
	}
}

// requireCountsReconcile requires the replicator process's statistics to
// reconcile after however many kills, restored from the target's counts.
func requireCountsReconcile(t *testing.T, p *process, rows func(table string) int64, tables ...string) {
	t.Helper()
	requireReconciled(t, tables, rows, snapshotCounts(func() runtime.Snapshot { return p.snapshot(t) }))
	if !p.snapshot(t).Cumulative {
		t.Error("the statistics were not restored from the target (Cumulative false)")
	}
}

// pgbench runs pgbench against db and returns its output.
func pgbench(ctx context.Context, db string, args ...string) *exec.Cmd {
	base := []string{"-h", testenv.PGHost, "-p", testenv.PGPort, "-U", testenv.PGUser}
	return exec.CommandContext(ctx, "pgbench", append(append(base, args...), db)...)
}

func writeTask(t *testing.T, dir string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "task.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPgbenchKill9 replicates a database under a concurrent pgbench workload,
// killing the replicator with SIGKILL several times during the full load and
// CDC, and requires every table to end equal to the source: nothing lost
// (row sets match) and nothing applied twice (pgbench_history has no key, so
// a duplicate insert would show as an extra row), and the statistics to
// count every row once.
func TestPgbenchKill9(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			t.Parallel()
			src := testenv.NewPGDatabase(t, "bench_src")
			dst := testenv.NewPGDatabase(t, "bench_dst")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if out, err := pgbench(ctx, src, "-i", "-s", "3", "-q").CombinedOutput(); err != nil {
				t.Fatalf("pgbench -i: %v\n%s", err, out)
			}
			dir := t.TempDir()
			tk := testenv.PGTask(t, fmt.Sprintf("kill9-%v", batch), runtime.FullLoadAndCDC, src, dst)
			tk.ReplicationSettings = json.RawMessage(fmt.Sprintf(`{"TargetMetadata":{"BatchApplyEnabled":%v},"FullLoadSettings":{"MaxFullLoadSubTasks":4},"SluiceSettings":{"ChunkPages":512}}`, batch))
			taskFile := writeTask(t, dir, tk)

			// Killed during the full load: the restart loads again.
			p := startReplicator(t, taskFile, dir)
			time.Sleep(300 * time.Millisecond)
			p.kill(t)

			bench := pgbench(ctx, src, "-c", "4", "-T", "15", "-n")
			benchOut := &strings.Builder{}
			bench.Stdout, bench.Stderr = benchOut, benchOut
			p = startReplicator(t, taskFile, dir)
			if err := bench.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				time.Sleep(2500 * time.Millisecond)
				p.kill(t)
				p = startReplicator(t, taskFile, dir)
			}
			if err := bench.Wait(); err != nil {
				t.Fatalf("pgbench: %v\n%s", err, benchOut)
			}
			testenv.WaitEqual(t, p, src, dst, 60*time.Second, pgbenchTables...)
			// Nothing the workload does is refused: a batch the target
			// stopped would be replayed change by change, slowly.
			if log, _ := os.ReadFile(filepath.Join(dir, "replicator.log")); strings.Contains(string(log), "the target refused a change") {
				t.Errorf("the target refused changes of a plain pgbench workload:\n%s", log)
			}
			requireCountsReconcile(t, p, pgCount(t, src), pgbenchTables...)

			// A graceful stop exits cleanly with the checkpoint.
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(); err != nil {
				log, _ := os.ReadFile(filepath.Join(dir, "replicator.log"))
				t.Fatalf("graceful stop: %v\n%s", err, log)
			}
			s := p.snapshot(t)
			if !strings.HasPrefix(s.Checkpoint, "checkpoint:pg-lsn:") {
				t.Errorf("checkpoint after stop = %q, want checkpoint:pg-lsn:...", s.Checkpoint)
			}
			var history runtime.TableSnapshot
			for _, ts := range s.Tables {
				if ts.TableName == "pgbench_history" {
					history = ts
				}
			}
			if len(history.Warnings) == 0 || !strings.Contains(history.Warnings[0], "pgbench_history") {
				t.Errorf("pgbench_history has no key: want a warning naming it, got %q", history.Warnings)
			}
			testenv.RequireEqualTables(t, src, dst, pgbenchTables...)
		})
	}
}
