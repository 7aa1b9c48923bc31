// Command demo is `make demo`: the main job of Sluice, end to end, through
// its public API. It prepares a sample PostgreSQL source (pgbench tables
// and an orders table with an enum, an array, numerics and an index),
// starts `sluice serve`, creates the endpoints and a full-load-and-cdc
// replication with the official AWS SDK, writes to the source while the
// replication runs, stops it, writes more, resumes it, and checks that the
// target ends identical to the source.
//
// Run it from the repository root after `make build` (make demo does both).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/jackc/pgx/v5"
)

const (
	srcDB, dstDB = "sluice_demo_src", "sluice_demo_dst"
	// redisDB is the Redis database the demo owns: it empties it.
	redisDB = 15
	config  = "demo"
)

var tables = []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "orders"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "\nDEMO FAILED:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }

// demo holds what the steps share.
type demo struct {
	pgHost, pgPort, pgUser string
	url, keyID, secret     string
	work                   string
	dms                    *dms.Client
	arn                    string
}

func run(ctx context.Context) error {
	d := &demo{pgHost: getenv("PGHOST", "127.0.0.1"), pgPort: getenv("PGPORT", "5432"), pgUser: getenv("PGUSER", "postgres")}
	if _, err := os.Stat("bin/sluice"); err != nil {
		return errors.New("bin/sluice is missing: run `make demo` (it builds first) from the repository root")
	}
	var err error
	if d.work, err = os.MkdirTemp("", "sluice-demo"); err != nil {
		return err
	}
	if os.Getenv("DEMO_KEEP") == "" {
		defer os.RemoveAll(d.work)
	}

	say("Preparing the source database %s (pgbench scale 5 and an orders table)", srcDB)
	if err := d.prepare(ctx); err != nil {
		return err
	}

	say("Starting sluice serve")
	serveLog, stopServe, err := d.serve(ctx)
	if err != nil {
		return err
	}
	defer stopServe()

	say("Creating the endpoints and the replication config %q through the DMS API", config)
	if err := d.create(ctx); err != nil {
		return err
	}
	fmt.Println("replication config:", d.arn)

	say("StartReplication (start-replication): full load, then CDC")
	if _, err := d.dms.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &d.arn, StartReplicationType: aws.String("start-replication")}); err != nil {
		return err
	}
	if err := d.watch(ctx, "-until", "loaded", "-timeout", "5m", config); err != nil {
		return fmt.Errorf("%w (serve log: %s)", err, lastLines(serveLog, 5))
	}

	say("Writing to the source for 20 s with pgbench (4 clients) while the changes flow")
	bench := exec.CommandContext(ctx, "pgbench", "-c", "4", "-T", "20", "-n", d.conn(srcDB))
	var benchOut strings.Builder
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	if err := bench.Start(); err != nil {
		return fmt.Errorf("pgbench: %w", err)
	}
	if err := d.exec(ctx, srcDB, `INSERT INTO orders (customer, amount) SELECT 'late ' || i, i FROM generate_series(1, 500) i`); err != nil {
		return err
	}
	if err := d.watch(ctx, "-interval", "2s", "-timeout", "20s", config); err != nil {
		return err
	}
	if err := bench.Wait(); err != nil {
		return fmt.Errorf("pgbench: %w\n%s", err, benchOut.String())
	}
	tps := regexp.MustCompile(`(?m)^tps = ([0-9.]+)`).FindStringSubmatch(benchOut.String())

	say("StopReplication: the replicator finishes its transaction and commits its position")
	if _, err := d.dms.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: &d.arn}); err != nil {
		return err
	}
	if err := d.watch(ctx, "-until", "stopped", "-timeout", "1m", config); err != nil {
		return err
	}

	say("Writing to the source while the replication is stopped")
	if err := d.exec(ctx, srcDB, `UPDATE orders SET status = 'shipped', tags = tags || 'late'::text WHERE id % 7 = 0`); err != nil {
		return err
	}
	if err := d.exec(ctx, srcDB, `DELETE FROM orders WHERE id % 11 = 0`); err != nil {
		return err
	}

	say("StartReplication (resume-processing): CDC goes on from the recovery checkpoint")
	if _, err := d.dms.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &d.arn, StartReplicationType: aws.String("resume-processing")}); err != nil {
		return err
	}
	if err := d.watch(ctx, "-until", "running", "-timeout", "1m", config); err != nil {
		return err
	}

	say("Waiting for the target to catch up")
	equal, err := d.waitEqual(ctx, 2*time.Minute)
	if err != nil {
		return err
	}
	if _, err := d.dms.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: &d.arn}); err != nil {
		return err
	}
	if err := d.watch(ctx, "-interval", "500ms", "-until", "stopped", "-timeout", "1m", config); err != nil {
		return err
	}

	say("Result")
	if err := d.summary(ctx, tps); err != nil {
		return err
	}
	// An idle slot keeps WAL forever: the demo's goes; the databases stay
	// for a look.
	if err := d.exec(ctx, srcDB, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`); err != nil {
		return err
	}
	if !equal {
		return errors.New("the target differs from the source (see the table above)")
	}
	fmt.Println("\nThe target equals the source after a full load, 20 s of writes, a stop, more writes and a resume.")
	return nil
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (d *demo) conn(db string) string {
	return fmt.Sprintf("host=%s port=%s user=%s dbname=%s", d.pgHost, d.pgPort, d.pgUser, db)
}

func (d *demo) exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, d.conn(db))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", clip(sql), err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (d *demo) prepare(ctx context.Context) error {
	var wal string
	c, err := pgx.Connect(ctx, d.conn("postgres"))
	if err == nil {
		err = c.QueryRow(ctx, "SHOW wal_level").Scan(&wal)
		defer c.Close(ctx)
	}
	if err != nil || wal != "logical" {
		return fmt.Errorf("PostgreSQL at %s:%s is not reachable or not set up for logical decoding (%v): run `make services` (as root) first", d.pgHost, d.pgPort, err)
	}
	for _, db := range []string{srcDB, dstDB} {
		for _, sql := range []string{
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '" + db + "'",
			"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)",
			"CREATE DATABASE " + db,
		} {
			if _, err := c.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-s", "5", "-q", d.conn(srcDB)).CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	for _, sql := range []string{
		`CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped')`,
		`CREATE TABLE orders (
		   id bigserial PRIMARY KEY,
		   customer text NOT NULL,
		   amount numeric(12,2),
		   tags text[],
		   status order_status DEFAULT 'new',
		   placed_at timestamptz DEFAULT now())`,
		`CREATE INDEX orders_customer ON orders (customer)`,
		`INSERT INTO orders (customer, amount, tags, status)
		 SELECT 'customer ' || i, i * 1.25, ARRAY['tag' || i % 3, NULL], (ARRAY['new','paid','shipped'])[i % 3 + 1]::order_status
		 FROM generate_series(1, 10000) i`,
		// The live view's progress bars compare against these estimates.
		`ANALYZE`,
	} {
		if err := d.exec(ctx, srcDB, sql); err != nil {
			return err
		}
	}
	fmt.Println("500,000 accounts, 50 tellers, 5 branches, 10,000 orders")
	return nil
}

// serve starts `sluice serve` on a free port with a fresh key pair and
// master key, and returns its log file and a function that stops it
// gracefully.
func (d *demo) serve(ctx context.Context) (string, func(), error) {
	if out, err := exec.CommandContext(ctx, "redis-cli", "-n", fmt.Sprint(redisDB), "FLUSHDB").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("empty Redis database %d (run `make services`): %w %s", redisDB, err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	d.url, d.keyID, d.secret = "http://"+addr, "AKIDSLUICEDEMO", random(20)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	logPath := filepath.Join(d.work, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("bin/sluice", "serve")
	cmd.Env = append(os.Environ(), "SLUICE_ADDR="+addr,
		fmt.Sprintf("SLUICE_REDIS_URL=redis://127.0.0.1:6379/%d", redisDB),
		"SLUICE_ACCESS_KEY_ID="+d.keyID, "SLUICE_SECRET_ACCESS_KEY="+d.secret,
		"SLUICE_MASTER_KEY="+base64.StdEncoding.EncodeToString(master),
		"SLUICE_STATE_DIR="+d.work)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return "", nil, fmt.Errorf("sluice serve exited at start: %s", lastLines(logPath, 5))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("sluice serve did not listen within 20 s")
		}
	}
	fmt.Printf("listening on %s (Redis database %d, log %s)\n", d.url, redisDB, logPath)
	d.dms = dms.New(dms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(d.url),
		Credentials:  credentials.NewStaticCredentialsProvider(d.keyID, d.secret, ""),
	})
	return logPath, stop, nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *demo) create(ctx context.Context) error {
	port := int32(5432)
	if _, err := fmt.Sscan(d.pgPort, &port); err != nil {
		return fmt.Errorf("PGPORT %q is not a port number", d.pgPort)
	}
	arns := map[types.ReplicationEndpointTypeValue]string{}
	for typ, db := range map[types.ReplicationEndpointTypeValue]string{types.ReplicationEndpointTypeValueSource: srcDB, types.ReplicationEndpointTypeValueTarget: dstDB} {
		out, err := d.dms.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String("demo-" + string(typ)), EndpointType: typ, EngineName: aws.String("postgres"),
			ServerName: &d.pgHost, Port: &port, DatabaseName: aws.String(db), Username: &d.pgUser,
		})
		if err != nil {
			return err
		}
		arns[typ] = *out.Endpoint.EndpointArn
		fmt.Printf("endpoint %-8s %s (%s)\n", typ, *out.Endpoint.EndpointArn, db)
	}
	out, err := d.dms.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String(config),
		SourceEndpointArn:           aws.String(arns[types.ReplicationEndpointTypeValueSource]),
		TargetEndpointArn:           aws.String(arns[types.ReplicationEndpointTypeValueTarget]),
		ReplicationType:             types.MigrationTypeValueFullLoadAndCdc,
		ComputeConfig:               &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
		TableMappings:               aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"public","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`),
	})
	if err != nil {
		return err
	}
	d.arn = *out.ReplicationConfig.ReplicationConfigArn
	return nil
}

// watch runs `sluice watch`, the live view a user would look at, on the
// demo's terminal.
func (d *demo) watch(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bin/sluice", append([]string{"watch", "-endpoint", d.url}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_ACCESS_KEY_ID="+d.keyID, "SLUICE_SECRET_ACCESS_KEY="+d.secret,
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sluice watch %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// digest is a table's row count and a digest of its rows as a set.
func (d *demo) digest(ctx context.Context, c *pgx.Conn, table string) string {
	var s string
	err := c.QueryRow(ctx, `SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(x::text, E'\n' ORDER BY x::text)), '-') FROM `+table+` x`).Scan(&s)
	if err != nil {
		return "missing"
	}
	return s
}

// compare returns each table's source and target digests.
func (d *demo) compare(ctx context.Context) (src, dst map[string]string, err error) {
	s, err := pgx.Connect(ctx, d.conn(srcDB))
	if err != nil {
		return nil, nil, err
	}
	defer s.Close(ctx)
	t, err := pgx.Connect(ctx, d.conn(dstDB))
	if err != nil {
		return nil, nil, err
	}
	defer t.Close(ctx)
	src, dst = map[string]string{}, map[string]string{}
	for _, table := range tables {
		src[table], dst[table] = d.digest(ctx, s, table), d.digest(ctx, t, table)
	}
	return src, dst, nil
}

func (d *demo) waitEqual(ctx context.Context, timeout time.Duration) (bool, error) {
	start := time.Now()
	for {
		src, dst, err := d.compare(ctx)
		if err != nil {
			return false, err
		}
		same := true
		for _, t := range tables {
			same = same && src[t] == dst[t]
		}
		if same {
			fmt.Printf("equal after %.1f s\n", time.Since(start).Seconds())
			return true, nil
		}
		if time.Since(start) > timeout {
			fmt.Printf("still different after %s\n", timeout)
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *demo) summary(ctx context.Context, tps []string) error {
	src, dst, err := d.compare(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-18s %-52s %s\n", "table", "source", "target equal?")
	for _, t := range tables {
		ok := "yes"
		if src[t] != dst[t] {
			ok = "NO: target has " + dst[t]
		}
		fmt.Printf("%-18s %-52s %s\n", t, src[t], ok)
	}
	seq := func(db string) string {
		c, err := pgx.Connect(ctx, d.conn(db))
		if err != nil {
			return err.Error()
		}
		defer c.Close(ctx)
		var v int64
		if err := c.QueryRow(ctx, `SELECT last_value FROM orders_id_seq`).Scan(&v); err != nil {
			return err.Error()
		}
		return fmt.Sprint(v)
	}
	fmt.Printf("\nsequence orders_id_seq: source %s, target %s\n", seq(srcDB), seq(dstDB))

	rs, err := d.dms.DescribeReplications(ctx, &dms.DescribeReplicationsInput{
		Filters: []types.Filter{{Name: aws.String("replication-config-arn"), Values: []string{d.arn}}},
	})
	if err != nil {
		return err
	}
	if len(rs.Replications) != 1 {
		return fmt.Errorf("DescribeReplications returned %d replications, want 1", len(rs.Replications))
	}
	r := rs.Replications[0]
	fmt.Printf("replication: status %s, stop reason %q\n", aws.ToString(r.Status), aws.ToString(r.StopReason))
	fmt.Printf("recovery checkpoint: %s\n", aws.ToString(r.RecoveryCheckpoint))
	if s := r.ReplicationStats; s != nil && s.FullLoadStartDate != nil && s.FullLoadFinishDate != nil {
		fmt.Printf("full load: %d tables in %.1f s\n", s.TablesLoaded, s.FullLoadFinishDate.Sub(*s.FullLoadStartDate).Seconds())
	}
	ts, err := d.dms.DescribeReplicationTableStatistics(ctx, &dms.DescribeReplicationTableStatisticsInput{ReplicationConfigArn: &d.arn})
	if err != nil {
		return err
	}
	fmt.Printf("\n%-18s %12s %9s %9s %9s\n", "table", "full load", "inserts", "updates", "deletes")
	for _, t := range ts.ReplicationTableStatistics {
		fmt.Printf("%-18s %12d %9d %9d %9d\n", aws.ToString(t.TableName), t.FullLoadRows, t.Inserts, t.Updates, t.Deletes)
	}
	if len(tps) == 2 {
		fmt.Printf("\npgbench: %s transactions per second on the source while replicating\n", tps[1])
	}
	return nil
}
