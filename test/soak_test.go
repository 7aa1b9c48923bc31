package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// soakKills is how many times TestSoakKill9 kills a replicator:
// SLUICE_SOAK_KILLS (make soak sets 20), else a short 4 for make test.
func soakKills(t *testing.T) int {
	if v := os.Getenv("SLUICE_SOAK_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SLUICE_SOAK_KILLS=%q: want a positive number", v)
		}
		return n
	}
	return 4
}

// replicatorOf returns the pid of the replicator the server runs for
// replication arn, 0 if none runs.
func replicatorOf(t *testing.T, s *server, arn string) int {
	t.Helper()
	for _, pid := range replicators(t, s) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), "SLUICE_REPLICATION_ARN="+arn) {
			return pid
		}
	}
	return 0
}

// soakRun is one replication of the soak: how to write a marker row on its
// source and see it on its target.
type soakRun struct {
	name, arn string
	mark      func(id int)
	arrived   func(id int) bool
	loading   func() bool
}

// TestSoakKill9: a PostgreSQL replication under pgbench and a MariaDB →
// PostgreSQL replication under sysbench run side by side under `sluice
// serve`, and their replicators are killed with SIGKILL at random moments,
// the first ones during the full load. After each kill a marker row is
// written on the source; the time until it is on the target is the
// recovery time, reported as p50 and max. In the end every table equals
// its source (nothing lost, nothing applied twice: pgbench_history has no
// key) and the statistics count every row once.
func TestSoakKill9(t *testing.T) {
	for _, tool := range []string{"pgbench", "sysbench"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make services` (as root)", tool)
		}
	}
	kills := soakKills(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("%d kills, seed %d", kills, seed)
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()

	// PostgreSQL → PostgreSQL under pgbench.
	pg := newFixture(t, c, "soakpg", "full-load-and-cdc")
	if out, err := pgbench(ctx, pg.src, "-i", "-s", "10", "-q").CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	testenv.Exec(t, pg.src, `CREATE TABLE soak_marker (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`)
	if _, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(pg.configArn),
		ReplicationSettings: aws.String(`{"SluiceSettings":{"ChunkPages":1024}}`)}); err != nil {
		t.Fatalf("ModifyReplicationConfig: %v", err)
	}
	pgDst := testenv.Connect(t, pg.dst)

	// MariaDB → PostgreSQL under sysbench.
	my := testenv.NewMySQLDatabase(t, "soakmy")
	myDst := testenv.NewPGDatabase(t, "soakmy_dst")
	const sbTables = 4
	sb := func(args ...string) *exec.Cmd {
		base := []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=" + testenv.MySQLHost, "--mysql-port=" + testenv.MySQLPort,
			"--mysql-user=" + testenv.MySQLUser, "--mysql-db=" + my, fmt.Sprintf("--tables=%d", sbTables), "--table-size=50000"}
		return exec.Command("sysbench", append(base, args...)...)
	}
	if out, err := sb("--threads=2", "prepare").CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	testenv.MySQLExec(t, my, `CREATE TABLE soak_marker (id int PRIMARY KEY, at datetime(6) NOT NULL DEFAULT NOW(6))`)
	ep := func(id, engine, host, db string, port int, user string, typ types.ReplicationEndpointTypeValue) *string {
		out, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String(id), EndpointType: typ, EngineName: aws.String(engine),
			ServerName: aws.String(host), Port: aws.Int32(int32(port)), DatabaseName: aws.String(db), Username: aws.String(user),
		})
		if err != nil {
			t.Fatalf("CreateEndpoint %s: %v", id, err)
		}
		return out.Endpoint.EndpointArn
	}
	cfg, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String("soakmy-cfg"),
		SourceEndpointArn:           ep("soakmy-src", "mariadb", testenv.MySQLHost, "", testenv.MySQLEndpoint().Port, testenv.MySQLUser, types.ReplicationEndpointTypeValueSource),
		TargetEndpointArn:           ep("soakmy-dst", "postgres", testenv.PGHost, myDst, 5432, testenv.PGUser, types.ReplicationEndpointTypeValueTarget),
		ReplicationType:             types.MigrationTypeValueFullLoadAndCdc,
		ComputeConfig:               &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
		TableMappings:               aws.String(string(testenv.IncludeAll(my))),
	})
	if err != nil {
		t.Fatalf("CreateReplicationConfig: %v", err)
	}
	myArn := *cfg.ReplicationConfig.ReplicationConfigArn
	myPG := testenv.Connect(t, myDst)
	myConn := testenv.MySQLConnect(t, my)

	phaseLoading := func(arn string) bool {
		out, err := c.DescribeReplications(ctx, &dms.DescribeReplicationsInput{Filters: []types.Filter{{Name: aws.String("replication-config-arn"), Values: []string{arn}}}})
		if err != nil || len(out.Replications) != 1 {
			return false
		}
		st := out.Replications[0].ReplicationStats
		return st == nil || st.FullLoadProgressPercent < 100
	}
	runs := []*soakRun{
		{name: "postgres", arn: pg.configArn,
			mark: func(id int) { testenv.Exec(t, pg.src, `INSERT INTO soak_marker (id) VALUES ($1)`, id) },
			arrived: func(id int) bool {
				var n int
				err := pgDst.QueryRow(ctx, `SELECT count(*) FROM public.soak_marker WHERE id = $1`, id).Scan(&n)
				return err == nil && n == 1
			},
			loading: func() bool { return phaseLoading(pg.configArn) }},
		{name: "mariadb", arn: myArn,
			mark: func(id int) {
				if _, err := myConn.Execute(fmt.Sprintf(`INSERT INTO soak_marker (id) VALUES (%d)`, id)); err != nil {
					t.Fatalf("marker: %v", err)
				}
			},
			arrived: func(id int) bool {
				var n int
				err := myPG.QueryRow(ctx, `SELECT count(*) FROM `+my+`.soak_marker WHERE id = $1`, id).Scan(&n)
				return err == nil && n == 1
			},
			loading: func() bool { return phaseLoading(myArn) }},
	}
	for _, r := range runs {
		if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(r.arn), StartReplicationType: aws.String("start-replication")}); err != nil {
			t.Fatalf("StartReplication %s: %v", r.name, err)
		}
	}
	// The writers run through every kill, and a little longer.
	secs := strconv.Itoa(8 + 4*kills)
	bench := pgbench(ctx, pg.src, "-c", "2", "-j", "1", "-T", secs, "-n")
	var benchOut, sbOut strings.Builder
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	load := sb("--threads=2", "--time="+secs, "--report-interval=0", "run")
	load.Stdout, load.Stderr = &sbOut, &sbOut
	for _, cmd := range []*exec.Cmd{bench, load} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}

	var recoveries []time.Duration
	var duringLoad int
	for k := range kills {
		r := runs[k%len(runs)]
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		var pid int
		for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(50 * time.Millisecond) {
			if pid = replicatorOf(t, s, r.arn); pid == 0 && time.Now().After(deadline) {
				t.Fatalf("kill %d: no replicator runs for the %s replication", k+1, r.name)
			}
		}
		loading := r.loading()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		r.mark(k + 1)
		limit := 30 * time.Second
		if loading {
			limit = 3 * time.Minute // the marker waits for the rest of the load
		}
		for !r.arrived(k + 1) {
			if time.Since(killed) > limit {
				t.Fatalf("kill %d (%s): the marker written after it is not on the target after %s", k+1, r.name, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(killed)
		if loading {
			duringLoad++
			t.Logf("kill %d (%s, during the full load): the marker reached the target %.2f s later, the load finished first", k+1, r.name, took.Seconds())
			continue
		}
		recoveries = append(recoveries, took)
		t.Logf("kill %d (%s, CDC): the marker reached the target %.2f s later", k+1, r.name, took.Seconds())
	}
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, benchOut.String())
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("sysbench: %v\n%s", err, sbOut.String())
	}
	if len(recoveries) > 0 {
		slices.Sort(recoveries)
		p50, worst := recoveries[len(recoveries)/2], recoveries[len(recoveries)-1]
		t.Logf("recovery after a SIGKILL during CDC, source write to target: p50 %.2f s, max %.2f s over %d kills (%d more during the full load)",
			p50.Seconds(), worst.Seconds(), len(recoveries), duringLoad)
		// The 3 s target is held to in make soak; the few kills of make
		// test on a machine busy with other tests only report it.
		if worst > 3*time.Second && os.Getenv("SLUICE_SOAK_KILLS") != "" {
			t.Errorf("a write on the source took %.2f s to reach the target after a SIGKILL, want under 3 s", worst.Seconds())
		}
	}

	testenv.WaitEqual(t, nil, pg.src, pg.dst, 2*time.Minute, append(pgbenchTables, "soak_marker")...)
	sbCols := []myCol{{"CAST(id AS CHAR)", "id::text"}, {"CAST(k AS CHAR)", "k::text"}, {"c", "c"}, {"pad", "pad"}}
	tables := map[string][]myCol{"soak_marker": {{"CAST(id AS CHAR)", "id::text"}}}
	for i := 1; i <= sbTables; i++ {
		tables[fmt.Sprintf("sbtest%d", i)] = sbCols
	}
	waitMyEqual(t, nil, my, myDst, 2*time.Minute, tables)

	// The statistics account for every row, after every kill.
	requireReconciled(t, append(pgbenchTables, "soak_marker"), pgCount(t, pg.src), apiCounts(t, c, pg.configArn))
	myTables := make([]string, 0, len(tables))
	for tb := range tables {
		myTables = append(myTables, tb)
	}
	requireReconciled(t, myTables, func(table string) int64 {
		n, _ := testenv.MySQLExec(t, my, "SELECT COUNT(*) FROM "+table).GetInt(0, 0)
		return n
	}, apiCounts(t, c, myArn))
}
