package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// faultProxy is a toxiproxy proxy, run in the test process on loopback,
// between the replicator and one database server.
type faultProxy struct {
	p    *toxiproxy.Proxy
	port int
}

func newFaultProxy(t *testing.T, name, upstream string) *faultProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start the fault proxy to %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	_, port, err := net.SplitHostPort(p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return &faultProxy{p: p, port: n}
}

// reset cuts every connection through the proxy at once, as a network
// that resets them does, and lets new ones through again after down.
func (f *faultProxy) reset(t *testing.T, down time.Duration) {
	t.Helper()
	f.p.Stop()
	time.Sleep(down)
	if err := f.p.Start(); err != nil {
		t.Fatalf("restart the fault proxy: %v", err)
	}
}

// toxic adds a toxic (toxiproxy's JSON: type, stream, attributes) to the
// connections through the proxy, open ones too, and returns a function
// that removes it.
func (f *faultProxy) toxic(t *testing.T, name, typ, stream string, attrs map[string]any) func() {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "attributes": attrs})
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
		t.Fatalf("add toxic %s: %v", name, err)
	}
	return func() {
		if err := f.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
			t.Errorf("remove toxic %s: %v", name, err)
		}
	}
}

// during applies a toxic for d, then removes it.
func (f *faultProxy) during(t *testing.T, d time.Duration, name, typ, stream string, attrs map[string]any) {
	t.Helper()
	remove := f.toxic(t, name, typ, stream, attrs)
	time.Sleep(d)
	remove()
}

// pgThrough is a PostgreSQL endpoint reached through f.
func pgThrough(f *faultProxy, db string) task.Endpoint {
	e := testenv.PGEndpoint(db)
	e.ServerName, e.Port = "127.0.0.1", f.port
	return e
}

// itemsWriter writes inserts, updates and deletes to table items of db
// until stopped, each statement its own transaction.
func itemsWriter(t *testing.T, db string) (stop func()) {
	return testenv.StartWriter(t, db, func(ctx context.Context, conn *pgx.Conn, i int) error {
		if _, err := conn.Exec(ctx, `INSERT INTO items (id, v) VALUES ($1, 'new') ON CONFLICT (id) DO NOTHING`, 1_000_000+i); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `UPDATE items SET v = v || '+' WHERE id = $1`, 1+i*7%5000); err != nil {
			return err
		}
		if i%5 == 0 {
			if _, err := conn.Exec(ctx, `DELETE FROM items WHERE id = $1`, 1_000_000+i-3); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	})
}

// requireNoExceptions fails if the target refused any change: in these
// tests every source change applies cleanly once, so a refused one is a
// change applied twice (an insert meeting its own row).
func requireNoExceptions(t *testing.T, dst string) {
	t.Helper()
	var n int
	if err := testenv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM public.awsdms_apply_exceptions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Fatalf("the target refused %d changes (awsdms_apply_exceptions): some were applied twice", n)
	}
}

// requireStatsReconcile requires an in-process replication's statistics
// to account for every row of table items of src.
func requireStatsReconcile(t *testing.T, r *testenv.Running, src string) {
	t.Helper()
	requireReconciled(t, []string{"items"}, pgCount(t, src), snapshotCounts(r.Stats.Snapshot))
}

// TestNetFaultPGSource: the network between the replicator and its
// PostgreSQL source resets every connection in the middle of the full
// load's copy, resets them again three times during CDC while a writer
// goes on, drops everything (a black hole) for 15 s, and slows every
// packet by 200 ms for 5 s. The replication recovers by itself each time,
// and ends with the target equal to the source and its statistics
// accounting for every row.
func TestNetFaultPGSource(t *testing.T) {
	src, dst := testenv.NewPGDatabase(t, "netsrc_src"), testenv.NewPGDatabase(t, "netsrc_dst")
	testenv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, src, `INSERT INTO items SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 200000) g`)
	f := newFaultProxy(t, "pgsource", testenv.PGHost+":"+testenv.PGPort)
	tk := testenv.PGTask(t, "netsrc", "full-load-and-cdc", src, dst)
	tk.SourceEndpoint = pgThrough(f, src)
	tk.ReplicationSettings = json.RawMessage(`{"SluiceSettings":{"ChunkPages":256},"FullLoadSettings":{"MaxFullLoadSubTasks":2}}`)
	// The copy is slowed so that the reset lands in its middle.
	slow := f.toxic(t, "slow", "bandwidth", "downstream", map[string]any{"rate": 4000})
	r := testenv.Start(t, tk)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if sn := r.Stats.Snapshot(); len(sn.Tables) == 1 && sn.Tables[0].TableState == runtime.StateLoading {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the copy did not start within a minute")
		}
	}
	time.Sleep(time.Second)
	if st := r.Stats.Snapshot().Tables[0].TableState; st != runtime.StateLoading {
		t.Fatalf("the table is %q when the connections are reset, want it loading (the slowed copy takes seconds)", st)
	}
	f.reset(t, 500*time.Millisecond)
	slow()
	testenv.WaitEqual(t, r, src, dst, 2*time.Minute, "items")

	stop := itemsWriter(t, src)
	for range 3 {
		time.Sleep(time.Second)
		f.reset(t, 300*time.Millisecond)
	}
	time.Sleep(time.Second)
	f.during(t, 15*time.Second, "hole", "timeout", "downstream", map[string]any{"timeout": 0})
	f.during(t, 5*time.Second, "lag", "latency", "downstream", map[string]any{"latency": 200})
	time.Sleep(time.Second)
	stop()
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	requireStatsReconcile(t, r, src)
	requireNoExceptions(t, dst)
}

// TestNetFaultPGTarget: the network between the replicator and its
// PostgreSQL target resets every connection three times while a writer
// changes the source, some of them in the middle of a target transaction
// or its commit, slows every packet by 200 ms for 5 s, then drops
// everything for 10 s (the applier's wait is cut after the endpoint's
// ExecuteTimeout). The replication recovers by itself, with nothing lost
// or applied twice.
func TestNetFaultPGTarget(t *testing.T) {
	src, dst := testenv.NewPGDatabase(t, "nettgt_src"), testenv.NewPGDatabase(t, "nettgt_dst")
	testenv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, src, `INSERT INTO items SELECT g, 'v' FROM generate_series(1, 5000) g`)
	f := newFaultProxy(t, "pgtarget", testenv.PGHost+":"+testenv.PGPort)
	tk := testenv.PGTask(t, "nettgt", "full-load-and-cdc", src, dst)
	tk.TargetEndpoint = pgThrough(f, dst)
	tk.TargetEndpoint.PostgreSQLSettings = &task.PostgreSQLSettings{ExecuteTimeout: 3}
	r := testenv.Start(t, tk)
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	stop := itemsWriter(t, src)
	for i := range 3 {
		time.Sleep(time.Duration(700+300*i) * time.Millisecond)
		f.reset(t, 300*time.Millisecond)
	}
	f.during(t, 5*time.Second, "lag", "latency", "upstream", map[string]any{"latency": 200})
	// A black hole: the applier's wait is cut after ExecuteTimeout (3 s).
	time.Sleep(time.Second)
	f.during(t, 10*time.Second, "hole", "timeout", "downstream", map[string]any{"timeout": 0})
	time.Sleep(time.Second)
	stop()
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	requireStatsReconcile(t, r, src)
	requireNoExceptions(t, dst)
}

// TestNetFaultMariaDBSource: the network between the replicator and its
// MariaDB source resets every connection three times during CDC while a
// writer changes the source, then drops everything for 15 s. The binlog
// stream recovers by itself each time, and the target ends equal.
func TestNetFaultMariaDBSource(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "netmy")
	dst := testenv.NewPGDatabase(t, "netmy_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE items (id int PRIMARY KEY, v varchar(200))`)
	testenv.MySQLExec(t, my, `INSERT INTO items SELECT seq, 'v' FROM seq_1_to_5000`)
	f := newFaultProxy(t, "mysqlsource", testenv.MySQLHost+":"+testenv.MySQLPort)
	srcEP := testenv.MySQLEndpoint()
	srcEP.ServerName, srcEP.Port = "127.0.0.1", f.port
	tk := &task.Task{
		ReplicationConfigIdentifier: "netmy", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: srcEP, TargetEndpoint: testenv.PGEndpoint(dst),
		TableMappings: testenv.IncludeAll(my),
	}
	r := testenv.Start(t, tk)
	cols := map[string][]myCol{"items": {{"CAST(id AS CHAR)", "id::text"}, {"v", "v"}}}
	waitMyEqual(t, r, my, dst, time.Minute, cols)
	stop := testenv.StartMySQLWriter(t, my, func(i int) []string {
		time.Sleep(3 * time.Millisecond)
		return []string{
			fmt.Sprintf("INSERT INTO items VALUES (%d, 'new')", 1_000_000+i),
			fmt.Sprintf("UPDATE items SET v = CONCAT(v, '+') WHERE id = %d", 1+i*7%5000),
		}
	})
	for range 3 {
		time.Sleep(time.Second)
		f.reset(t, 300*time.Millisecond)
	}
	time.Sleep(time.Second)
	f.during(t, 15*time.Second, "hole", "timeout", "downstream", map[string]any{"timeout": 0})
	time.Sleep(time.Second)
	stop()
	waitMyEqual(t, r, my, dst, time.Minute, cols)
}

// resilientWriter inserts rows into table items of a PostgreSQL (pg) or
// MariaDB database until stopped, reconnecting whenever the server goes
// away: a restart only pauses it. It returns how many rows it wrote.
func resilientWriter(t *testing.T, write func(id int) error) (stop func() int) {
	done := make(chan struct{})
	var wrote int
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for id := 1_000_000; ; {
			select {
			case <-done:
				return
			default:
			}
			if err := write(id); err != nil {
				time.Sleep(100 * time.Millisecond) // down: try again
				continue
			}
			wrote++
			id++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() int { close(done); <-finished; return wrote }
}

// TestServerRestarts: the PostgreSQL server that is both source and target
// of one replication restarts (pg_ctlcluster restart) while a writer goes
// on, and so does the MariaDB server that is the source of another
// (shutdown, then start). Both replications recover by themselves, with
// nothing lost or applied twice.
func TestServerRestarts(t *testing.T) {
	ctx := context.Background()
	src, dst := testenv.NewPGDatabase(t, "restart_src"), testenv.NewPGDatabase(t, "restart_dst")
	testenv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, src, `INSERT INTO items SELECT g, 'v' FROM generate_series(1, 2000) g`)
	my := testenv.NewMySQLDatabase(t, "restartmy")
	myDst := testenv.NewPGDatabase(t, "restartmy_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE items (id int PRIMARY KEY, v varchar(20))`)
	testenv.MySQLExec(t, my, `INSERT INTO items SELECT seq, 'v' FROM seq_1_to_2000`)
	var version int
	if err := testenv.Connect(t, "postgres").QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	pgRestart := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", strconv.Itoa(version/10000), "main", "restart")

	r := testenv.Start(t, testenv.PGTask(t, "restartpg", "full-load-and-cdc", src, dst))
	rm := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "restartmy", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(myDst),
		TableMappings: testenv.IncludeAll(my),
	})
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	cols := map[string][]myCol{"items": {{"CAST(id AS CHAR)", "id::text"}, {"v", "v"}}}
	waitMyEqual(t, rm, my, myDst, time.Minute, cols)

	stopPG := resilientWriter(t, func(id int) error {
		conn, err := pgx.Connect(ctx, testenv.PGURL(src))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err = conn.Exec(ctx, `INSERT INTO items VALUES ($1, 'new')`, id); err != nil {
			return err
		}
		_, err = conn.Exec(ctx, `UPDATE items SET v = v || '+' WHERE id = $1`, id%2000+1)
		return err
	})
	time.Sleep(time.Second)
	if out, err := pgRestart.CombinedOutput(); err != nil {
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	t.Logf("PostgreSQL: %d rows written around the restart", stopPG())
	testenv.WaitEqual(t, r, src, dst, time.Minute, "items")
	requireStatsReconcile(t, r, src)

	stopMy := resilientWriter(t, func(id int) error {
		conn, err := testenv.MySQLDial(my)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Execute(fmt.Sprintf("INSERT INTO items VALUES (%d, 'new')", id))
		return err
	})
	time.Sleep(time.Second)
	testenv.RestartMariaDB(t)
	time.Sleep(2 * time.Second)
	t.Logf("MariaDB: %d rows written around the restart", stopMy())
	waitMyEqual(t, rm, my, myDst, time.Minute, cols)
}

// TestRedisOutage: Redis, which holds the control state and the leases,
// is unreachable for 30 s while a replication runs under `sluice serve`
// and a writer changes the source. The replication goes on or stops
// cleanly, and once Redis is back it runs with one replicator, the target
// equal to the source, and its statistics counting every row once.
func TestRedisOutage(t *testing.T) {
	f := newFaultProxy(t, "redis", "127.0.0.1:6379")
	s := startServer(t, fmt.Sprintf("SLUICE_REDIS_URL=redis://127.0.0.1:%d/%d", f.port, testRedisDB), "SLUICE_LEASE_TTL=3s")
	c := s.client(testSecret)
	ctx := context.Background()
	fx := newFixture(t, c, "redisout", "full-load-and-cdc")
	testenv.Exec(t, fx.src, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, fx.src, `INSERT INTO items SELECT g, 'v' FROM generate_series(1, 5000) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(fx.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	fx.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	stop := itemsWriter(t, fx.src)
	time.Sleep(time.Second)
	f.p.Stop() // every connection reset, none accepted
	dstConn := testenv.Connect(t, fx.dst)
	count := func() (n int64) {
		if err := dstConn.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	time.Sleep(5 * time.Second)
	early := count()
	time.Sleep(25 * time.Second)
	t.Logf("target rows during the outage: %d at its start, %d after 5 s, %d after 30 s; replicators now %v", before, early, count(), replicators(t, s))
	if err := f.p.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	stop()
	testenv.WaitEqual(t, nil, fx.src, fx.dst, 2*time.Minute, "items")
	fx.waitFor(t, c, "running again", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "running" })
	if n := len(replicators(t, s)); n != 1 {
		t.Fatalf("%d replicators run after Redis came back, want 1", n)
	}
	requireReconciled(t, []string{"items"}, pgCount(t, fx.src), apiCounts(t, c, fx.configArn))
	requireNoExceptions(t, fx.dst)
}
