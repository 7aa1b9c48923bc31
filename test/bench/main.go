// Command bench measures Sluice against peer tools on this machine, in one
// run: the full load of a pgbench database against pgcopydb clone, and CDC
// lag under a pgbench workload against PostgreSQL's own logical replication,
// with the source's throughput alone and under each. Lag is measured end to
// end with marker rows that carry the source's clock: a writer inserts one
// every few milliseconds and a reader on the target notes when each appears.
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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	host    = flag.String("host", "127.0.0.1", "PostgreSQL host")
	port    = flag.Int("port", 5432, "PostgreSQL port")
	user    = flag.String("user", "postgres", "PostgreSQL user")
	scale   = flag.Int("scale", 20, "pgbench scale of the source")
	seconds = flag.Int("seconds", 60, "duration of each pgbench workload")
	clients = flag.Int("clients", 4, "pgbench clients")
	rounds  = flag.Int("rounds", 3, "full-load runs per tool (the median counts)")
	bin     = flag.String("bin", "bin/sluice-replicator", "the sluice-replicator binary")
	jobs    = flag.Int("jobs", 4, "parallel copy jobs for both tools")
	only    = flag.String("only", "", "run one part: load, cdc, validate (PostgreSQL) or mysql (default: all)")
	reuse   = flag.Bool("reuse", false, "reuse the source database from an earlier run")
	lagsOut = flag.String("lags", "", "write each CDC run's marker lags to this file as CSV (run, seconds into the run, lag ms), to see when lag spikes")
	runs    = flag.String("cdc-runs", "sluice,batch,native", "the CDC runs, after the source alone: sluice (transactional apply), batch (BatchApplyEnabled), native")
)

const (
	src = "sluice_bench_src"
	// memLimitMB is the replicator's MemoryLimitTotal in the CDC run.
	memLimitMB = 256
)

func main() {
	flag.Parse()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func url(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", *user, *host, *port, db)
}

func run(ctx context.Context) error {
	for _, tool := range []string{"pgbench", "pgcopydb", "pg_dump", *bin} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: run `make services` (as root) and `make build`", tool)
		}
	}
	work, err := os.MkdirTemp("", "sluice-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	defer func() {
		// The copies are large; the source stays for -reuse.
		for _, db := range []string{"sluice_bench_dst", "sluice_bench_pgcopydb", "sluice_bench_cdc", "sluice_bench_native", "sluice_bench_val"} {
			_ = execSQL(context.WithoutCancel(ctx), "postgres", fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, db))
		}
	}()
	fmt.Printf("machine: %d cores; pgbench scale %d, %d clients, %d s workloads\n\n", numCPU(), *scale, *clients, *seconds)

	if !*reuse && *only != "mysql" {
		if err := recreate(ctx, src); err != nil {
			return err
		}
		if out, err := pgbench(ctx, "-i", "-s", strconv.Itoa(*scale), "-q"); err != nil {
			return fmt.Errorf("pgbench -i: %v\n%s", err, out)
		}
		if err := execSQL(ctx, src, `CREATE TABLE sluice_marker (id bigserial PRIMARY KEY, src_ts timestamptz NOT NULL)`); err != nil {
			return err
		}
	}
	if *only == "" || *only == "load" {
		if err := fullLoad(ctx, work); err != nil {
			return err
		}
	}
	if *only == "" || *only == "cdc" {
		if err := cdc(ctx, work); err != nil {
			return err
		}
	}
	if *only == "" || *only == "validate" {
		fmt.Println()
		if err := validationBench(ctx, work); err != nil {
			return err
		}
	}
	if *only == "" || *only == "mysql" {
		fmt.Println()
		return mysqlBench(ctx, work)
	}
	return nil
}

func fullLoad(ctx context.Context, work string) error {

	// Full load.
	var sluiceTimes, copydbTimes []time.Duration
	for i := 0; i < *rounds; i++ {
		d, err := timeSluiceLoad(ctx, work, i)
		if err != nil {
			return err
		}
		sluiceTimes = append(sluiceTimes, d)
		d, err = timePgcopydb(ctx, work, i)
		if err != nil {
			return err
		}
		copydbTimes = append(copydbTimes, d)
	}
	sl, pc := median(sluiceTimes), median(copydbTimes)
	fmt.Printf("full load of pgbench -s %d (%d parallel jobs each)\n", *scale, *jobs)
	fmt.Printf("  sluice-replicator full-load      median %6.2f s  runs %s\n", sl.Seconds(), fmtDurations(sluiceTimes))
	fmt.Printf("  pgcopydb clone                   median %6.2f s  runs %s\n", pc.Seconds(), fmtDurations(copydbTimes))
	fmt.Printf("  ratio sluice / pgcopydb          %.2f  (target <= 1.0)\n\n", sl.Seconds()/pc.Seconds())
	return nil
}

// cdc measures each CDC run of -cdc-runs under the same pgbench workload.
// The source's throughput alone is measured before each run and after the
// last, and each run is compared with the mean of the two measured around
// it: the source's speed drifts on a shared machine (autovacuum, the
// history table growing), and a single measurement at the start would fold
// that drift into the later runs' ratios.
func cdc(ctx context.Context, work string) error {
	var results []cdcResult
	var alone []float64
	measureAlone := func() error {
		tps, err := workload(ctx)
		if err != nil {
			return err
		}
		alone = append(alone, tps)
		fmt.Printf("source throughput alone            %.0f tps\n", tps)
		return nil
	}
	for _, run := range strings.Split(*runs, ",") {
		if err := measureAlone(); err != nil {
			return err
		}
		var r cdcResult
		var err error
		switch run {
		case "sluice":
			r, err = sluiceCDC(ctx, work, false)
		case "batch":
			r, err = sluiceCDC(ctx, work, true)
		case "native":
			r, err = nativeCDC(ctx, work)
		default:
			return fmt.Errorf("-cdc-runs: %q is not a run: use sluice, batch or native", run)
		}
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if err := measureAlone(); err != nil {
		return err
	}
	fmt.Println()
	for i := range results {
		results[i].alone = (alone[i] + alone[i+1]) / 2
	}
	if *lagsOut != "" {
		if err := writeLags(*lagsOut, results); err != nil {
			return err
		}
	}
	var native *cdcResult
	for i, r := range results {
		fmt.Printf("CDC: %s\n", r.name)
		fmt.Printf("  lag p50 %6.1f ms  p95 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d markers)\n", ms(r.p(50)), ms(r.p(95)), ms(r.p(99)), ms(r.p(100)), len(r.lags))
		fmt.Printf("  caught up %.0f ms after the workload stopped\n", ms(r.catchUp))
		fmt.Printf("  source throughput %.0f tps = %.2f x alone (%.0f tps, before and after)\n", r.tps, r.tps/r.alone, r.alone)
		fmt.Printf("  cores used: %s\n", r.cpu)
		if r.peakRSS > 0 {
			fmt.Printf("  replicator peak RSS %d MiB (MemoryLimitTotal %d MiB)\n", r.peakRSS>>20, memLimitMB)
		}
		if r.native {
			native = &results[i]
		}
	}
	for _, r := range results {
		if r.native {
			continue
		}
		fmt.Println()
		if native != nil {
			fmt.Printf("%s / native logical replication: lag p99 %.2f, source throughput %.2f\n",
				r.name, ms(r.p(99))/ms(native.p(99)), (r.tps/r.alone)/(native.tps/native.alone))
		}
		fmt.Printf("  targets for %s: p99 <= 100 ms: %v; caught up <= 1 s: %v; throughput >= 0.8 x alone: %v\n",
			r.name, ms(r.p(99)) <= 100, r.catchUp <= time.Second, r.tps/r.alone >= 0.8)
	}
	return nil
}

func writeLags(path string, results []cdcResult) error {
	var b strings.Builder
	b.WriteString("run,seconds,lag_ms\n")
	for _, r := range results {
		for i, l := range r.lags {
			fmt.Fprintf(&b, "%q,%.3f,%.1f\n", r.name, r.at[i].Seconds(), ms(l))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func timeSluiceLoad(ctx context.Context, work string, round int) (time.Duration, error) {
	dst := "sluice_bench_dst"
	if err := recreate(ctx, dst); err != nil {
		return 0, err
	}
	tf, err := writeTask(work, fmt.Sprintf("bench-load-%d", round), "full-load", dst, fmt.Sprintf(`{"FullLoadSettings":{"MaxFullLoadSubTasks":%d}}`, *jobs))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, *bin, "-task", tf).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("sluice full load: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

func timePgcopydb(ctx context.Context, work string, round int) (time.Duration, error) {
	dst := "sluice_bench_pgcopydb"
	if err := recreate(ctx, dst); err != nil {
		return 0, err
	}
	dir := filepath.Join(work, fmt.Sprintf("pgcopydb-%d", round))
	start := time.Now()
	out, err := exec.CommandContext(ctx, "pgcopydb", "clone", "--source", url(src), "--target", url(dst),
		"--dir", dir, "--table-jobs", strconv.Itoa(*jobs), "--index-jobs", strconv.Itoa(*jobs)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgcopydb clone: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

type cdcResult struct {
	name    string
	native  bool
	lags    []time.Duration
	at      []time.Duration // when each marker was seen, from the start of the workload
	catchUp time.Duration
	tps     float64
	alone   float64 // the source's throughput alone around this run
	peakRSS int64
	// cpu is the cores each part of the replication used on average while
	// the workload ran: where the source's lost throughput went.
	cpu cpuUse
}

// cpuUse is the average cores used by the replication's processes and by the
// whole machine over the workload.
type cpuUse struct {
	replicator, walsender, apply, machine float64
}

func (c cpuUse) String() string {
	s := fmt.Sprintf("target apply session %.2f", c.apply)
	if c.walsender > 0 {
		s = fmt.Sprintf("walsender %.2f, ", c.walsender) + s
	}
	if c.replicator > 0 {
		s = fmt.Sprintf("replicator %.2f, ", c.replicator) + s
	}
	return s + fmt.Sprintf("; machine busy %.2f of %d", c.machine, numCPU())
}

func (r cdcResult) p(q int) time.Duration {
	if len(r.lags) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.lags...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*q + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

// sluiceCDC replicates the source with Sluice, with transactional or batch
// apply (BatchApplyEnabled), and measures while pgbench runs.
func sluiceCDC(ctx context.Context, work string, batch bool) (cdcResult, error) {
	dst := "sluice_bench_cdc"
	if err := recreate(ctx, dst); err != nil {
		return cdcResult{}, err
	}
	stats := filepath.Join(work, "cdc-stats.json")
	_ = os.Remove(stats) // the previous run's says cdc already
	tf, err := writeTask(work, "bench-cdc", "full-load-and-cdc", dst, fmt.Sprintf(`{"ChangeProcessingTuning":{"MemoryLimitTotal":%d},"TargetMetadata":{"BatchApplyEnabled":%v}}`, memLimitMB, batch))
	if err != nil {
		return cdcResult{}, err
	}
	logf, err := os.Create(filepath.Join(work, "cdc.log"))
	if err != nil {
		return cdcResult{}, err
	}
	defer logf.Close()
	cmd := exec.Command(*bin, "-task", tf, "-stats-file", stats)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return cdcResult{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		dropSlot(ctx, src)
		_ = execSQL(ctx, src, `DROP PUBLICATION IF EXISTS sluice_bench_cdc, sluice_bench_cdc_ins`)
	}()
	if err := waitPhase(stats, "cdc", 5*time.Minute); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return cdcResult{}, fmt.Errorf("%v\n%s", err, log)
	}
	r, err := measure(ctx, dst, cmd.Process.Pid)
	r.name = "sluice-replicator (transactional apply)"
	if batch {
		r.name = "sluice-replicator (BatchApplyEnabled)"
	}
	r.peakRSS = peakRSS(cmd.Process.Pid)
	return r, err
}

// nativeCDC replicates the source with a PostgreSQL subscription and
// measures the same way.
func nativeCDC(ctx context.Context, work string) (cdcResult, error) {
	dst := "sluice_bench_native"
	if err := recreate(ctx, dst); err != nil {
		return cdcResult{}, err
	}
	schema, err := exec.CommandContext(ctx, "pg_dump", "-s", url(src)).Output()
	if err != nil {
		return cdcResult{}, fmt.Errorf("pg_dump -s: %w", err)
	}
	psql := exec.CommandContext(ctx, "psql", "-q", "-v", "ON_ERROR_STOP=1", url(dst))
	psql.Stdin = strings.NewReader(string(schema))
	if out, err := psql.CombinedOutput(); err != nil {
		return cdcResult{}, fmt.Errorf("restore schema: %v\n%s", err, out)
	}
	if err := execSQL(ctx, src, `DROP PUBLICATION IF EXISTS bench_native; CREATE PUBLICATION bench_native FOR ALL TABLES`); err != nil {
		return cdcResult{}, err
	}
	// A subscription to the same cluster cannot create its slot itself (the
	// slot would wait for the creating transaction): create it first.
	if err := execSQL(ctx, src, `SELECT pg_create_logical_replication_slot('bench_native', 'pgoutput')`); err != nil {
		return cdcResult{}, err
	}
	conn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", *host, *port, *user, src)
	if err := execSQL(ctx, dst, fmt.Sprintf(`CREATE SUBSCRIPTION bench_native CONNECTION '%s' PUBLICATION bench_native WITH (create_slot = false, slot_name = 'bench_native')`, conn)); err != nil {
		return cdcResult{}, err
	}
	defer func() {
		_ = execSQL(ctx, dst, `ALTER SUBSCRIPTION bench_native DISABLE; ALTER SUBSCRIPTION bench_native SET (slot_name = NONE); DROP SUBSCRIPTION bench_native`)
		_ = execSQL(ctx, src, `SELECT pg_drop_replication_slot('bench_native'); DROP PUBLICATION bench_native`)
	}()
	// Wait for the initial table sync to finish.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		c, err := pgx.Connect(ctx, url(dst))
		if err != nil {
			return cdcResult{}, err
		}
		var pending int
		err = c.QueryRow(ctx, `SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'`).Scan(&pending)
		c.Close(ctx)
		if err != nil {
			return cdcResult{}, err
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return cdcResult{}, fmt.Errorf("the native subscription did not finish its initial sync")
		}
		time.Sleep(200 * time.Millisecond)
	}
	r, err := measure(ctx, dst, 0)
	r.name = "PostgreSQL native logical replication (peer)"
	r.native = true
	return r, err
}

// measure runs pgbench against the PostgreSQL source and measures the lag
// of dst behind it (see probe).
func measure(ctx context.Context, dst string, replicator int) (cdcResult, error) {
	w, err := pgx.Connect(ctx, url(src))
	if err != nil {
		return cdcResult{}, err
	}
	defer w.Close(ctx)
	return probe{
		dst: dst, table: "sluice_marker", replicator: replicator, workload: workload,
		insert: func(ctx context.Context) (id int64, err error) {
			err = w.QueryRow(ctx, `INSERT INTO sluice_marker (src_ts) VALUES (clock_timestamp()) RETURNING id`).Scan(&id)
			return id, err
		},
	}.run(ctx)
}

// probe measures end-to-end lag with marker rows that carry the source's
// clock: insert writes one on the source every 20 ms while workload runs,
// and a trigger on the target's copy of the marker table (ENABLE ALWAYS, so
// it fires for a subscription's apply worker too) notifies each with its
// source time. The notification is delivered when the applying transaction
// commits, which is when the row becomes visible; waiting for it costs the
// target nothing, where polling would take CPU from the workload. Then it
// measures how long the target takes to catch up, and the CPU the
// replication's processes used.
type probe struct {
	dst        string // target database
	table      string // the marker table on the target
	insert     func(context.Context) (int64, error)
	workload   func(context.Context) (float64, error)
	replicator int // pid of Sluice's replicator; 0 for the native peer
}

func (p probe) run(ctx context.Context) (cdcResult, error) {
	var r cdcResult
	rd, err := pgx.Connect(ctx, url(p.dst))
	if err != nil {
		return r, err
	}
	defer rd.Close(context.WithoutCancel(ctx))
	if _, err := rd.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION sluice_marker_seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_notify('sluice_marker', NEW.id || ' ' || (extract(epoch FROM NEW.src_ts) * 1000000)::bigint); RETURN NULL; END $$;
		CREATE OR REPLACE TRIGGER sluice_marker_seen AFTER INSERT ON %[1]s FOR EACH ROW EXECUTE FUNCTION sluice_marker_seen();
		ALTER TABLE %[1]s ENABLE ALWAYS TRIGGER sluice_marker_seen;
		LISTEN sluice_marker`, p.table)); err != nil {
		return r, fmt.Errorf("set up the marker trigger on the target: %w", err)
	}
	// The processes that replicate: the walsenders of the source, and the
	// target sessions other than this reader (Sluice's applier, or the
	// subscription's apply worker).
	var walsenders, appliers []int
	if err := rd.QueryRow(ctx, `SELECT
		coalesce(array_agg(pid) FILTER (WHERE backend_type = 'walsender'), '{}'),
		coalesce(array_agg(pid) FILTER (WHERE datname = $1 AND backend_type <> 'walsender' AND pid <> pg_backend_pid()), '{}')
		FROM pg_stat_activity`, p.dst).Scan(&walsenders, &appliers); err != nil {
		return r, err
	}
	type marker struct {
		id  int64
		lag time.Duration
		at  time.Time
	}
	seen := make(chan marker, 1024)
	listenErr := make(chan error, 1)
	go func() {
		defer close(seen)
		for {
			n, err := rd.WaitForNotification(context.Background())
			if err != nil {
				listenErr <- err
				return
			}
			now := time.Now()
			var id, us int64
			if _, err := fmt.Sscan(n.Payload, &id, &us); err != nil {
				listenErr <- fmt.Errorf("marker notification %q: %w", n.Payload, err)
				return
			}
			seen <- marker{id, now.Sub(time.UnixMicro(us)), now}
		}
	}()
	defer func() {
		// Closing the listener's connection ends its wait.
		_ = rd.PgConn().Close(context.WithoutCancel(ctx))
		for range seen {
		}
	}()
	cpu0, machine0 := procCPU(walsenders, appliers, p.replicator), machineCPU()
	began := time.Now()
	var last int64
	note := func(m marker) {
		r.lags = append(r.lags, m.lag)
		r.at = append(r.at, m.at.Sub(began))
		last = max(last, m.id)
	}
	done := make(chan struct{})
	tpsCh := make(chan float64, 1)
	errCh := make(chan error, 1)
	go func() {
		defer close(done)
		t, err := p.workload(ctx)
		tpsCh <- t
		errCh <- err
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case m, ok := <-seen:
			if !ok {
				return r, fmt.Errorf("listen for markers: %w", <-listenErr)
			}
			note(m)
		case <-tick.C:
			if _, err := p.insert(ctx); err != nil {
				return r, err
			}
		}
	}
	if err := <-errCh; err != nil {
		return r, err
	}
	r.tps = <-tpsCh
	cpu1, elapsed := procCPU(walsenders, appliers, p.replicator), time.Since(began).Seconds()
	r.cpu = cpuUse{
		walsender:  (cpu1[0] - cpu0[0]) / elapsed,
		apply:      (cpu1[1] - cpu0[1]) / elapsed,
		replicator: (cpu1[2] - cpu0[2]) / elapsed,
		machine:    (machineCPU() - machine0) / elapsed,
	}
	// Catch-up: the first marker written after the workload stopped.
	stopped := time.Now()
	id, err := p.insert(ctx)
	if err != nil {
		return r, err
	}
	timeout := time.After(2 * time.Minute)
	for last < id {
		select {
		case m, ok := <-seen:
			if !ok {
				return r, fmt.Errorf("listen for markers: %w", <-listenErr)
			}
			if m.id == id {
				r.catchUp = time.Since(stopped)
				last = id
				continue
			}
			note(m)
		case <-timeout:
			return r, fmt.Errorf("the target did not catch up within 2 minutes")
		}
	}
	return r, nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)

func workload(ctx context.Context) (float64, error) {
	out, err := pgbench(ctx, "-c", strconv.Itoa(*clients), "-j", "2", "-T", strconv.Itoa(*seconds), "-n")
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output:\n%s", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

func pgbench(ctx context.Context, args ...string) ([]byte, error) {
	base := []string{"-h", *host, "-p", strconv.Itoa(*port), "-U", *user}
	return exec.CommandContext(ctx, "pgbench", append(append(base, args...), src)...).CombinedOutput()
}

func writeTask(work, id, typ, dst, settings string) (string, error) {
	ep := func(db string) map[string]any {
		return map[string]any{"EngineName": "postgres", "ServerName": *host, "Port": *port, "DatabaseName": db, "Username": *user}
	}
	t := map[string]any{
		"ReplicationConfigIdentifier": id, "ReplicationType": typ,
		"SourceEndpoint": ep(src), "TargetEndpoint": ep(dst),
		"TableMappings":       `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`,
		"ReplicationSettings": settings,
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	path := filepath.Join(work, id+".json")
	return path, os.WriteFile(path, b, 0o600)
}

func waitPhase(statsFile, phase string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var s struct{ Phase string }
		if b, err := os.ReadFile(statsFile); err == nil && json.Unmarshal(b, &s) == nil && s.Phase == phase {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the replicator did not reach phase %s in %s", phase, timeout)
}

func recreate(ctx context.Context, db string) error {
	dropSlot(ctx, db)
	return execSQL(ctx, "postgres", fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, db), fmt.Sprintf(`CREATE DATABASE %s`, db))
}

func dropSlot(ctx context.Context, db string) {
	_ = execSQL(ctx, "postgres", fmt.Sprintf(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '%s'`, db))
}

func execSQL(ctx context.Context, db string, stmts ...string) error {
	c, err := pgx.Connect(ctx, url(db))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// clockTicks is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTicks = 100

// procCPU returns the CPU seconds used so far by the walsenders, the target
// sessions and the replicator.
func procCPU(walsenders, appliers []int, replicator int) [3]float64 {
	var t [3]float64
	for _, p := range walsenders {
		t[0] += pidCPU(p)
	}
	for _, p := range appliers {
		t[1] += pidCPU(p)
	}
	if replicator > 0 {
		t[2] = pidCPU(replicator)
	}
	return t
}

// pidCPU is a process's user and system CPU seconds (fields 14 and 15 of
// /proc/<pid>/stat, after the command name, which may hold spaces).
func pidCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / clockTicks
}

// machineCPU is the CPU seconds all cores have been busy (not idle or
// waiting for I/O) since boot.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / clockTicks
}

func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func fmtDurations(d []time.Duration) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%.2f", x.Seconds())
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
