package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// The MySQL part: a sysbench database on the local MariaDB, loaded into
// PostgreSQL by Sluice and by pgloader, then replicated under sysbench
// oltp_write_only with marker rows that carry the source's clock.
var (
	myHost   = flag.String("mysql-host", "127.0.0.1", "MariaDB/MySQL host")
	myPort   = flag.Int("mysql-port", 3306, "MariaDB/MySQL port")
	myUser   = flag.String("mysql-user", "root", "MariaDB/MySQL user (empty password)")
	myTables = flag.Int("mysql-tables", 8, "sysbench tables")
	myRows   = flag.Int("mysql-rows", 250000, "rows per sysbench table")
)

const mySrc = "sluice_bench_my"

func myConnect() (*client.Conn, error) {
	return client.Connect(fmt.Sprintf("%s:%d", *myHost, *myPort), *myUser, "", "")
}

func sysbench(ctx context.Context, args ...string) ([]byte, error) {
	base := []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=" + *myHost, "--mysql-port=" + strconv.Itoa(*myPort),
		"--mysql-user=" + *myUser, "--mysql-db=" + mySrc, "--tables=" + strconv.Itoa(*myTables), "--table-size=" + strconv.Itoa(*myRows)}
	return exec.CommandContext(ctx, "sysbench", append(base, args...)...).CombinedOutput()
}

func mysqlBench(ctx context.Context, work string) error {
	for _, tool := range []string{"sysbench", "pgloader"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: run `make services` (as root)", tool)
		}
	}
	conn, err := myConnect()
	if err != nil {
		return fmt.Errorf("connect to MariaDB (run `make services`): %w", err)
	}
	defer conn.Close()
	if !*reuse {
		for _, q := range []string{"DROP DATABASE IF EXISTS " + mySrc, "CREATE DATABASE " + mySrc} {
			if _, err := conn.Execute(q); err != nil {
				return err
			}
		}
		if out, err := sysbench(ctx, "--threads=4", "prepare"); err != nil {
			return fmt.Errorf("sysbench prepare: %v\n%s", err, out)
		}
		if _, err := conn.Execute("CREATE TABLE " + mySrc + ".sluice_marker (id bigint AUTO_INCREMENT PRIMARY KEY, src_ts datetime(6) NOT NULL)"); err != nil {
			return err
		}
	}
	defer func() {
		for _, db := range []string{"sluice_bench_my_dst", "sluice_bench_pgloader", "sluice_bench_my_cdc"} {
			_ = execSQL(context.WithoutCancel(ctx), "postgres", fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, db))
		}
	}()

	var sluiceTimes, loaderTimes []time.Duration
	for i := 0; i < *rounds; i++ {
		d, err := timeMySQLLoad(ctx, work, i)
		if err != nil {
			return err
		}
		sluiceTimes = append(sluiceTimes, d)
		if d, err = timePgloader(ctx); err != nil {
			return err
		}
		loaderTimes = append(loaderTimes, d)
	}
	sl, pl := median(sluiceTimes), median(loaderTimes)
	fmt.Printf("full load of sysbench %d tables x %d rows, MariaDB -> PostgreSQL\n", *myTables, *myRows)
	fmt.Printf("  sluice-replicator full-load      median %6.2f s  runs %s\n", sl.Seconds(), fmtDurations(sluiceTimes))
	fmt.Printf("  pgloader                         median %6.2f s  runs %s\n", pl.Seconds(), fmtDurations(loaderTimes))
	fmt.Printf("  ratio sluice / pgloader          %.2f  (target <= 0.5)\n\n", sl.Seconds()/pl.Seconds())

	// The source alone before and after, as for PostgreSQL (see cdc).
	before, err := sysbenchRun(ctx)
	if err != nil {
		return err
	}
	r, err := mysqlCDC(ctx, work)
	if err != nil {
		return err
	}
	after, err := sysbenchRun(ctx)
	if err != nil {
		return err
	}
	alone := (before + after) / 2
	fmt.Printf("MariaDB source throughput alone    %.0f and %.0f tps (sysbench oltp_write_only, %d threads)\n", before, after, *clients)
	fmt.Printf("CDC: %s\n", r.name)
	fmt.Printf("  lag p50 %6.1f ms  p95 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d markers)\n", ms(r.p(50)), ms(r.p(95)), ms(r.p(99)), ms(r.p(100)), len(r.lags))
	fmt.Printf("  caught up %.0f ms after the workload stopped\n", ms(r.catchUp))
	fmt.Printf("  source throughput %.0f tps = %.2f x alone\n", r.tps, r.tps/alone)
	fmt.Printf("  cores used: %s\n", r.cpu)
	fmt.Printf("  replicator peak RSS %d MiB (MemoryLimitTotal %d MiB)\n", r.peakRSS>>20, memLimitMB)
	fmt.Printf("  targets: p99 <= 100 ms: %v; caught up <= 1 s: %v\n", ms(r.p(99)) <= 100, r.catchUp <= time.Second)
	return nil
}

func writeMySQLTask(work, id, typ, dst string) (string, error) {
	t := map[string]any{
		"ReplicationConfigIdentifier": id, "ReplicationType": typ,
		"SourceEndpoint":      map[string]any{"EngineName": "mariadb", "ServerName": *myHost, "Port": *myPort, "Username": *myUser},
		"TargetEndpoint":      map[string]any{"EngineName": "postgres", "ServerName": *host, "Port": *port, "DatabaseName": dst, "Username": *user},
		"TableMappings":       `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"` + mySrc + `","table-name":"%"},"rule-action":"include"}]}`,
		"ReplicationSettings": fmt.Sprintf(`{"FullLoadSettings":{"MaxFullLoadSubTasks":%d},"ChangeProcessingTuning":{"MemoryLimitTotal":%d}}`, *jobs, memLimitMB),
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	path := filepath.Join(work, id+".json")
	return path, os.WriteFile(path, b, 0o600)
}

func timeMySQLLoad(ctx context.Context, work string, round int) (time.Duration, error) {
	dst := "sluice_bench_my_dst"
	if err := recreate(ctx, dst); err != nil {
		return 0, err
	}
	tf, err := writeMySQLTask(work, fmt.Sprintf("bench-my-load-%d", round), "full-load", dst)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, *bin, "-task", tf).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("sluice full load from MariaDB: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

func timePgloader(ctx context.Context) (time.Duration, error) {
	dst := "sluice_bench_pgloader"
	if err := recreate(ctx, dst); err != nil {
		return 0, err
	}
	start := time.Now()
	// Debian's pgloader runs out of its default Lisp heap on this data;
	// a larger heap and smaller prefetch are the fix its issues give.
	out, err := exec.CommandContext(ctx, "pgloader", "--dynamic-space-size", "4096", "--with", "prefetch rows = 10000",
		fmt.Sprintf("mysql://%s@%s:%d/%s", *myUser, *myHost, *myPort, mySrc),
		fmt.Sprintf("postgresql://%s@%s:%d/%s", *user, *host, *port, dst)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgloader: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

var sysbenchTPS = regexp.MustCompile(`transactions:\s+\d+\s+\(([0-9.]+) per sec`)

func sysbenchRun(ctx context.Context) (float64, error) {
	out, err := sysbench(ctx, "--threads="+strconv.Itoa(*clients), "--time="+strconv.Itoa(*seconds), "--report-interval=0", "run")
	if err != nil {
		return 0, fmt.Errorf("sysbench run: %v\n%s", err, out)
	}
	m := sysbenchTPS.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("no transactions per second in sysbench output:\n%s", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// mysqlCDC replicates the sysbench database into PostgreSQL and measures
// the lag of marker rows written on MariaDB while sysbench runs.
func mysqlCDC(ctx context.Context, work string) (cdcResult, error) {
	dst := "sluice_bench_my_cdc"
	if err := recreate(ctx, dst); err != nil {
		return cdcResult{}, err
	}
	stats := filepath.Join(work, "my-cdc-stats.json")
	_ = os.Remove(stats)
	tf, err := writeMySQLTask(work, "bench-my-cdc", "full-load-and-cdc", dst)
	if err != nil {
		return cdcResult{}, err
	}
	logf, err := os.Create(filepath.Join(work, "my-cdc.log"))
	if err != nil {
		return cdcResult{}, err
	}
	defer logf.Close()
	cmd := exec.Command(*bin, "-task", tf, "-stats-file", stats)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return cdcResult{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitPhase(stats, "cdc", 10*time.Minute); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return cdcResult{}, fmt.Errorf("%v\n%s", err, log)
	}
	w, err := myConnect()
	if err != nil {
		return cdcResult{}, err
	}
	defer w.Close()
	r, err := probe{
		dst: dst, table: mySrc + ".sluice_marker", replicator: cmd.Process.Pid, workload: sysbenchRun,
		// UTC_TIMESTAMP(6) on the source, a timestamp without time zone
		// on the target: its epoch is UTC's.
		insert: func(context.Context) (int64, error) {
			res, err := w.Execute(`INSERT INTO ` + mySrc + `.sluice_marker (src_ts) VALUES (UTC_TIMESTAMP(6))`)
			if err != nil {
				return 0, err
			}
			return int64(res.InsertId), nil
		},
	}.run(ctx)
	r.name = "sluice-replicator, MariaDB -> PostgreSQL (transactional apply)"
	if err != nil {
		return r, err
	}
	r.peakRSS = peakRSS(cmd.Process.Pid)
	return r, nil
}
