package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// myCol is one column as each side prints it, so that rows compare as
// text: the MariaDB expression and the PostgreSQL one must print the same
// value the same way.
type myCol struct{ my, pg string }

// myItemsCols covers the types of the items table below.
var myItemsCols = []myCol{
	{"CAST(id AS CHAR)", "id::text"},
	{"name", "name"},
	{"CAST(price AS CHAR)", "price::text"},
	{"CAST(qty AS CHAR)", "qty::text"},
	{"CAST(big AS CHAR)", "big::text"},
	{"CAST(small AS CHAR)", "small::text"},
	{"DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f')", "to_char(created, 'YYYY-MM-DD HH24:MI:SS.US')"},
	{"DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"},
	{"CAST(day AS CHAR)", "day::text"},
	{"LPAD(BIN(flags), 5, '0')", "flags::text"},
	{"kind", "kind"},
	{"tags", "tags"},
	{"LOWER(HEX(data))", "encode(data, 'hex')"},
	{"note", "note"},
	{"CAST(t AS CHAR)", "t::text"},
	{"CAST(y AS CHAR)", "y::text"},
	{"CAST(f AS CHAR)", "f::text"},
	{"CAST(d AS CHAR)", "d::text"},
	{"doc", "doc::text"},
}

// myRows returns the rows of a table as sorted lines, from MariaDB (my) or
// PostgreSQL (pg, where the MySQL database is the schema).
func myRows(t *testing.T, my *client.Conn, pg *pgx.Conn, schema, table string, cols []myCol) []string {
	t.Helper()
	fromMySQL := my != nil
	var exprs []string
	for _, c := range cols {
		e := c.pg
		if fromMySQL {
			e = c.my
		}
		exprs = append(exprs, "COALESCE("+e+", '<null>')")
	}
	var out []string
	if fromMySQL {
		q := "SELECT CONCAT_WS('|', " + strings.Join(exprs, ", ") + ") FROM " + schema + "." + table
		r, err := my.Execute(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for i := range r.RowNumber() {
			s, _ := r.GetString(i, 0)
			out = append(out, s)
		}
	} else {
		q := "SELECT concat_ws('|', " + strings.Join(exprs, ", ") + ") FROM " + schema + "." + table
		rows, err := pg.Query(context.Background(), q)
		if err != nil {
			return []string{"query failed: " + err.Error()}
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if rows.Err() != nil {
			return []string{"query failed: " + rows.Err().Error()}
		}
	}
	sort.Strings(out)
	return out
}

// waitLoaded waits for an in-process replication's full load to end.
func waitLoaded(t *testing.T, r *testenv.Running) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); r.Stats.Snapshot().Phase != "cdc"; time.Sleep(50 * time.Millisecond) {
		if err := r.Err(); err != nil || time.Now().After(deadline) {
			t.Fatalf("full load did not finish: %v", err)
		}
	}
}

// waitMyEqual waits until every table holds the same rows on both sides.
func waitMyEqual(t *testing.T, r testenv.Replication, mysqlDB, pgDB string, timeout time.Duration, tables map[string][]myCol) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	my, pg := testenv.MySQLConnect(t, mysqlDB), testenv.Connect(t, pgDB)
	if _, err := my.Execute("SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	for {
		if r != nil {
			if err := r.Err(); err != nil {
				t.Fatalf("replication failed: %v", err)
			}
		}
		diff := ""
		for table, cols := range tables {
			src, dst := myRows(t, my, nil, mysqlDB, table, cols), myRows(t, nil, pg, mysqlDB, table, cols)
			if strings.Join(src, "\n") != strings.Join(dst, "\n") {
				diff = firstDiff(table, src, dst)
				break
			}
		}
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("source and target still differ after %s: %s", timeout, diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstDiff(table string, src, dst []string) string {
	for i := 0; i < len(src) || i < len(dst); i++ {
		var s, d string
		if i < len(src) {
			s = src[i]
		}
		if i < len(dst) {
			d = dst[i]
		}
		if s != d {
			return fmt.Sprintf("%s: %d rows on the source, %d on the target; first difference:\n  source %q\n  target %q", table, len(src), len(dst), s, d)
		}
	}
	return ""
}

// TestMySQLToPostgres: a MariaDB database is fully loaded into PostgreSQL
// while it is written to, then kept equal through inserts, updates (also
// of the key), deletes, and a table without a key; every column type of
// the map is compared value by value.
func TestMySQLToPostgres(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "my2pg")
	pg := testenv.NewPGDatabase(t, "my2pg_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE items (
		id int AUTO_INCREMENT PRIMARY KEY,
		name varchar(50) NOT NULL,
		price decimal(12,2),
		qty int unsigned,
		big bigint unsigned,
		small tinyint,
		created datetime(6),
		ts timestamp(6) NULL,
		day date,
		flags bit(5),
		kind enum('new','paid','it''s shipped'),
		tags set('x','y','z'),
		data blob,
		note text,
		t time,
		y year,
		f float,
		d double,
		doc json,
		KEY items_name (name))`)
	testenv.MySQLExec(t, my, `CREATE TABLE nokey (a int, b varchar(10))`)
	fill := func(from, to int) {
		testenv.MySQLExec(t, my, fmt.Sprintf(`INSERT INTO items (name, price, qty, big, small, created, ts, day, flags, kind, tags, data, note, t, y, f, d, doc)
			SELECT CONCAT('item ', seq, ' ✓ 😀'), seq * 1.25, 4294967295 - seq, 18446744073709551615 - CAST(seq AS UNSIGNED), CAST(seq %% 256 AS SIGNED) - 128,
			       '2024-02-29 23:59:59.123456' + INTERVAL seq SECOND, '2024-06-01 12:00:00.5' + INTERVAL seq MINUTE, '1999-12-31' + INTERVAL seq DAY,
			       seq %% 32, ELT(seq %% 3 + 1, 'new', 'paid', 'it''s shipped'), ELT(seq %% 4 + 1, '', 'x', 'x,z', 'x,y,z'),
			       UNHEX(CONCAT('00ff', LPAD(HEX(seq), 8, '0'))), IF(seq %% 10 = 0, NULL, CONCAT('tab\t nl\n back\\ ', seq)),
			       IF(seq %% 2 = 0, '-838:59:59', '100:00:01'), 1901 + seq %% 254, seq + 0.5, seq / 4, CONCAT('{"n": ', seq, '}')
			FROM seq_%d_to_%d`, from, to))
	}
	fill(1, 3000)
	testenv.MySQLExec(t, my, `INSERT INTO nokey SELECT seq, CONCAT('b', seq) FROM seq_1_to_200`)

	tk := &task.Task{
		ReplicationConfigIdentifier: "my2pg", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings:       testenv.IncludeAll(my),
		ReplicationSettings: []byte(`{"SluiceSettings":{"ChunkPages":8}}`),
	}
	// Writes during the full load land before or after each chunk's
	// snapshot; the target must converge either way.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn := testenv.MySQLConnect(t, my)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, q := range []string{
				fmt.Sprintf(`UPDATE items SET price = price + 1, note = 'during load %d' WHERE id = %d`, i, i%3000+1),
				fmt.Sprintf(`DELETE FROM items WHERE id = %d`, (i*7)%3000+1),
				fmt.Sprintf(`INSERT INTO items (name, created) VALUES ('load %d', NOW(6))`, i),
			} {
				if _, err := conn.Execute(q); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}
	}()
	r := testenv.Start(t, tk)
	for deadline := time.Now().Add(2 * time.Minute); r.Stats.Snapshot().Phase != "cdc"; time.Sleep(50 * time.Millisecond) {
		if err := r.Err(); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("replication failed during the full load: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("full load did not finish in 2 minutes")
		}
	}
	close(stop)
	wg.Wait()

	// CDC: every kind of change, with the same types.
	fill(3001, 3500)
	testenv.MySQLExec(t, my, `UPDATE items SET kind = 'paid', tags = 'y', flags = b'10101', doc = '{"changed": true}', ts = NULL WHERE id % 5 = 0`)
	testenv.MySQLExec(t, my, `UPDATE items SET id = id + 100000 WHERE id % 97 = 0`)
	testenv.MySQLExec(t, my, `DELETE FROM items WHERE id % 13 = 0`)
	testenv.MySQLExec(t, my, `UPDATE nokey SET b = 'changed' WHERE a % 3 = 0`)
	testenv.MySQLExec(t, my, `DELETE FROM nokey WHERE a % 7 = 0`)
	testenv.MySQLExec(t, my, `INSERT INTO nokey VALUES (1, 'b1'), (NULL, NULL)`)
	waitMyEqual(t, r, my, pg, time.Minute, map[string][]myCol{
		"items": myItemsCols,
		"nokey": {{"COALESCE(CAST(a AS CHAR), 'null')", "COALESCE(a::text, 'null')"}, {"b", "b"}},
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// The target's identity continues after the source's AUTO_INCREMENT.
	var next int64
	if err := testenv.Connect(t, pg).QueryRow(context.Background(), `INSERT INTO `+my+`.items (name) VALUES ('on the target') RETURNING id`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	ai := testenv.MySQLExec(t, "", `SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'items'`, my)
	if want, _ := ai.GetInt(0, 0); next < want {
		t.Errorf("a row inserted on the target got id %d, below the source's AUTO_INCREMENT %d", next, want)
	}
}

// TestMySQLKill9: the replicator of a MariaDB source is killed with
// SIGKILL several times while a writer keeps changing a keyed table and a
// table without a key; after each restart it resumes from the position it
// committed with the data, so in the end nothing is lost and nothing is
// applied twice (a duplicate insert into the keyless table would show as
// an extra row).
func TestMySQLKill9(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "mykill")
	pg := testenv.NewPGDatabase(t, "mykill_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL, note varchar(40))`)
	testenv.MySQLExec(t, my, `CREATE TABLE journal (acct int, delta int, at datetime(6))`)
	testenv.MySQLExec(t, my, `INSERT INTO acct SELECT seq, 1000, 'opened' FROM seq_1_to_5000`)
	dir := t.TempDir()
	tf := writeTask(t, dir, &task.Task{
		ReplicationConfigIdentifier: "mykill", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my),
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn := testenv.MySQLConnect(t, my)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := i*7919%5000 + 1
			for _, q := range []string{
				"BEGIN",
				fmt.Sprintf(`UPDATE acct SET balance = balance - 1, note = 'tx %d' WHERE id = %d`, i, id),
				fmt.Sprintf(`INSERT INTO journal VALUES (%d, -1, NOW(6))`, id),
				"COMMIT",
			} {
				if _, err := conn.Execute(q); err != nil {
					t.Errorf("writer: %s: %v", q, err)
					return
				}
			}
			if i%50 == 0 {
				if _, err := conn.Execute(fmt.Sprintf(`DELETE FROM journal WHERE acct = %d LIMIT 1`, id)); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}
	}()
	p := startReplicator(t, tf, dir)
	for k := 0; k < 3; k++ {
		time.Sleep(time.Duration(700+300*k) * time.Millisecond)
		p.kill(t)
		p = startReplicator(t, tf, dir)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	waitMyEqual(t, p, my, pg, time.Minute, map[string][]myCol{
		"acct":    {{"CAST(id AS CHAR)", "id::text"}, {"CAST(balance AS CHAR)", "balance::text"}, {"note", "note"}},
		"journal": {{"CAST(acct AS CHAR)", "acct::text"}, {"CAST(delta AS CHAR)", "delta::text"}, {"DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f')", "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')"}},
	})
}

// TestAPIMySQLSource drives a MariaDB → PostgreSQL replication through the
// DMS API, as TestAPIReplicationLifecycle does for PostgreSQL: create the
// endpoints and config, start, see the load and the changes counted, stop,
// write more, resume, and find the target equal to the source.
func TestAPIMySQLSource(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	my := testenv.NewMySQLDatabase(t, "apimy")
	pg := testenv.NewPGDatabase(t, "apimy_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE orders (id bigint unsigned AUTO_INCREMENT PRIMARY KEY, item varchar(40) NOT NULL, qty int, placed datetime)`)
	testenv.MySQLExec(t, my, `INSERT INTO orders (item, qty, placed) SELECT CONCAT('item ', seq), seq, '2025-01-01' + INTERVAL seq MINUTE FROM seq_1_to_2000`)

	_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("apimy-bad-engine"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("oracle"),
		ServerName: aws.String(testenv.MySQLHost), Port: aws.Int32(3306), Username: aws.String("root"),
	})
	requireFault(t, err, "InvalidParameterValueException")
	src, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("apimy-src"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("mariadb"),
		ServerName: aws.String(testenv.MySQLHost), Port: aws.Int32(int32(testenv.MySQLEndpoint().Port)), Username: aws.String(testenv.MySQLUser),
	})
	if err != nil {
		t.Fatalf("CreateEndpoint mariadb: %v", err)
	}
	dst, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("apimy-dst"), EndpointType: types.ReplicationEndpointTypeValueTarget, EngineName: aws.String("postgres"),
		ServerName: aws.String(testenv.PGHost), Port: aws.Int32(5432), DatabaseName: aws.String(pg), Username: aws.String(testenv.PGUser),
	})
	if err != nil {
		t.Fatalf("CreateEndpoint postgres: %v", err)
	}
	cfg, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String("apimy-cfg"),
		SourceEndpointArn:           src.Endpoint.EndpointArn, TargetEndpointArn: dst.Endpoint.EndpointArn,
		ReplicationType: types.MigrationTypeValueFullLoadAndCdc,
		ComputeConfig:   &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
		TableMappings:   aws.String(string(testenv.IncludeAll(my))),
	})
	if err != nil {
		t.Fatalf("CreateReplicationConfig: %v", err)
	}
	f := &apiFixture{configArn: *cfg.ReplicationConfig.ReplicationConfigArn, configID: "apimy-cfg"}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &f.configArn, StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	testenv.MySQLExec(t, my, `INSERT INTO orders (item, qty) SELECT CONCAT('new ', seq), seq FROM seq_1_to_100`)
	testenv.MySQLExec(t, my, `UPDATE orders SET qty = qty * 2 WHERE id <= 50`)
	testenv.MySQLExec(t, my, `DELETE FROM orders WHERE id BETWEEN 1001 AND 1010`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "orders")
		if ts.FullLoadRows == 2000 && ts.Inserts == 100 && ts.Updates == 50 && ts.Deletes == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders statistics: full load %d, inserts %d, updates %d, deletes %d", ts.FullLoadRows, ts.Inserts, ts.Updates, ts.Deletes)
		}
	}
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: &f.configArn}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	r := f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if cp := aws.ToString(r.RecoveryCheckpoint); !strings.HasPrefix(cp, "checkpoint:mysql-binlog:") {
		t.Fatalf("RecoveryCheckpoint = %q, want a binlog checkpoint", cp)
	}
	testenv.MySQLExec(t, my, `UPDATE orders SET item = CONCAT(item, ' (while stopped)') WHERE id % 9 = 0`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &f.configArn, StartReplicationType: aws.String("resume-processing")}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitMyEqual(t, nil, my, pg, time.Minute, map[string][]myCol{
		"orders": {{"CAST(id AS CHAR)", "id::text"}, {"item", "item"}, {"CAST(qty AS CHAR)", "qty::text"}, {"DATE_FORMAT(placed, '%Y-%m-%d %H:%i:%s')", "to_char(placed, 'YYYY-MM-DD HH24:MI:SS')"}},
	})
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: &f.configArn}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
}

// TestMySQLStartPositions: a CDC replication from a MariaDB source starts
// at a given binlog position and replays what came after it; a position in
// a binlog file the server no longer has ends the replication with the
// file's name and the way out.
func TestMySQLStartPositions(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "mypos")
	pg := testenv.NewPGDatabase(t, "mypos_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE ev (id int PRIMARY KEY, v text)`)
	r := testenv.MySQLExec(t, "", "SHOW MASTER STATUS")
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	testenv.MySQLExec(t, my, `INSERT INTO ev SELECT seq, 'after the position' FROM seq_1_to_100`)
	// The target has the table (a CDC replication does not create it).
	testenv.Exec(t, pg, `CREATE SCHEMA `+my)
	testenv.Exec(t, pg, `CREATE TABLE `+my+`.ev (id int PRIMARY KEY, v text)`)

	tk := &task.Task{
		ReplicationConfigIdentifier: "mypos", ReplicationType: "cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my), CdcStartPosition: fmt.Sprintf("%s:%d", file, pos),
	}
	run := testenv.Start(t, tk)
	waitMyEqual(t, run, my, pg, time.Minute, map[string][]myCol{"ev": {{"CAST(id AS CHAR)", "id::text"}, {"v", "v"}}})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	gone := strings.TrimSuffix(file, file[strings.LastIndexByte(file, '.')+1:]) + "000000"
	tk.ReplicationConfigIdentifier, tk.CdcStartPosition = "mypos-purged", gone+":4"
	err := task.Run(context.Background(), tk, nil, nil)
	if err == nil || !strings.Contains(err.Error(), gone) || !strings.Contains(err.Error(), "reload-target") {
		t.Fatalf("starting in a purged binlog: err = %v, want one naming %s and reload-target", err, gone)
	}
}

// TestMySQLDDL: table changes in the binlog — columns added (with the
// default the existing rows take, and in the middle), widened, retyped,
// renamed and dropped, a table renamed, one truncated, one dropped — reach
// the target in order with the rows around them, which are read with the
// columns they were written with.
func TestMySQLDDL(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "myddl")
	pg := testenv.NewPGDatabase(t, "myddl_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(10))`)
	testenv.MySQLExec(t, my, `CREATE TABLE gone (id int PRIMARY KEY)`)
	testenv.MySQLExec(t, my, `CREATE TABLE emptied (id int PRIMARY KEY)`)
	testenv.MySQLExec(t, my, `INSERT INTO t SELECT seq, seq, CONCAT('b', seq) FROM seq_1_to_100`)
	testenv.MySQLExec(t, my, `INSERT INTO gone SELECT seq FROM seq_1_to_10`)
	testenv.MySQLExec(t, my, `INSERT INTO emptied SELECT seq FROM seq_1_to_10`)
	r := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "myddl", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my),
	})
	waitLoaded(t, r)
	for _, q := range []string{
		`INSERT INTO t VALUES (101, 101, 'before')`,
		`ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 7 AFTER id`,
		`INSERT INTO t (id, c, a, b) VALUES (102, 70, 102, 'with c')`,
		`ALTER TABLE t MODIFY b varchar(40)`,
		`UPDATE t SET b = 'a value longer than ten characters' WHERE id <= 5`,
		`ALTER TABLE t CHANGE a a2 bigint`,
		`UPDATE t SET a2 = 9000000000 + id WHERE id BETWEEN 6 AND 10`,
		`ALTER TABLE t RENAME COLUMN b TO b2`,
		`UPDATE t SET b2 = 'renamed' WHERE id = 11`,
		`ALTER TABLE t DROP COLUMN c`,
		`ALTER TABLE t ADD COLUMN d varchar(5) NOT NULL`,
		`INSERT INTO t (id, a2, b2, d) VALUES (103, 103, 'with d', 'ddd')`,
		`RENAME TABLE t TO t_new`,
		`INSERT INTO t_new (id, a2, b2, d) VALUES (104, 104, 'renamed table', 'e')`,
		`DELETE FROM t_new WHERE id = 1`,
		`TRUNCATE TABLE emptied`,
		`DROP TABLE gone`,
		`CREATE TABLE born (id int AUTO_INCREMENT PRIMARY KEY, v varchar(20) NOT NULL, n decimal(8,2))`,
		`INSERT INTO born (v, n) VALUES ('first', 1.5), ('second', NULL)`,
		`UPDATE born SET n = 2.25 WHERE v = 'second'`,
	} {
		testenv.MySQLExec(t, my, q)
	}
	waitMyEqual(t, r, my, pg, time.Minute, map[string][]myCol{
		"t_new":   {{"CAST(id AS CHAR)", "id::text"}, {"CAST(a2 AS CHAR)", "a2::text"}, {"b2", "b2"}, {"d", "d"}},
		"emptied": {{"CAST(id AS CHAR)", "id::text"}},
		"born":    {{"CAST(id AS CHAR)", "id::text"}, {"v", "v"}, {"CAST(n AS CHAR)", "n::text"}},
	})
	var gone, oldT *string
	if err := testenv.Connect(t, pg).QueryRow(context.Background(), `SELECT to_regclass($1)::text, to_regclass($2)::text`, my+".gone", my+".t").Scan(&gone, &oldT); err != nil {
		t.Fatal(err)
	}
	if gone != nil || oldT != nil {
		t.Fatalf("the dropped table (%v) and the renamed table's old name (%v) should be gone from the target", gone, oldT)
	}
	if ddls := r.Stats.Table(my, "t").DDLs.Load(); ddls < 6 {
		t.Errorf("table t counted %d DDLs, want at least 6", ddls)
	}
}

// TestMySQLSysbench: a sysbench database on MariaDB, written to by
// `sysbench oltp_write_only` through its full load and CDC, with the
// replicator killed with SIGKILL twice on the way, ends with every table
// on the PostgreSQL target equal to the source.
func TestMySQLSysbench(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: run `make services` (as root)")
	}
	my := testenv.NewMySQLDatabase(t, "mysb")
	pg := testenv.NewPGDatabase(t, "mysb_dst")
	const tables = 4
	sb := func(ctx context.Context, args ...string) *exec.Cmd {
		base := []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=" + testenv.MySQLHost, "--mysql-port=" + testenv.MySQLPort,
			"--mysql-user=" + testenv.MySQLUser, "--mysql-db=" + my, fmt.Sprintf("--tables=%d", tables), "--table-size=20000"}
		return exec.CommandContext(ctx, "sysbench", append(base, args...)...)
	}
	if out, err := sb(context.Background(), "--threads=2", "prepare").CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	dir := t.TempDir()
	tf := writeTask(t, dir, &task.Task{
		ReplicationConfigIdentifier: "mysb", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings:       testenv.IncludeAll(my),
		ReplicationSettings: []byte(`{"SluiceSettings":{"ChunkPages":64}}`),
	})
	load := sb(context.Background(), "--threads=2", "--time=12", "--report-interval=0", "run")
	var out strings.Builder
	load.Stdout, load.Stderr = &out, &out
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	p := startReplicator(t, tf, dir)
	for _, wait := range []time.Duration{3 * time.Second, 3 * time.Second} {
		time.Sleep(wait)
		p.kill(t)
		p = startReplicator(t, tf, dir)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("sysbench run: %v\n%s", err, out.String())
	}
	cols := []myCol{{"CAST(id AS CHAR)", "id::text"}, {"CAST(k AS CHAR)", "k::text"}, {"c", "c"}, {"pad", "pad"}}
	want := map[string][]myCol{}
	for i := 1; i <= tables; i++ {
		want[fmt.Sprintf("sbtest%d", i)] = cols
	}
	waitMyEqual(t, p, my, pg, 2*time.Minute, want)
}

// TestMySQLCdcStartTime: a CDC replication from MariaDB with CdcStartTime
// starts at the first transaction committed at or after that time, found
// from the binlog's timestamps: what came before is not replayed.
func TestMySQLCdcStartTime(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "mytime")
	pg := testenv.NewPGDatabase(t, "mytime_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE ev (id int PRIMARY KEY, v text)`)
	testenv.MySQLExec(t, my, `INSERT INTO ev SELECT seq, 'before' FROM seq_1_to_50`)
	// Binlog timestamps have whole seconds: the start time falls in a
	// second of its own.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	at := time.Now().UTC()
	time.Sleep(time.Until(at.Truncate(time.Second).Add(1100 * time.Millisecond)))
	testenv.MySQLExec(t, my, `INSERT INTO ev SELECT seq, 'after' FROM seq_51_to_80`)
	testenv.MySQLExec(t, my, `UPDATE ev SET v = 'after, updated' WHERE id = 1`)
	testenv.Exec(t, pg, `CREATE SCHEMA `+my)
	testenv.Exec(t, pg, `CREATE TABLE `+my+`.ev (id int PRIMARY KEY, v text)`)
	r := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "mytime", ReplicationType: "cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my), CdcStartTime: at.Format(time.RFC3339Nano),
	})
	var n, before int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		c := testenv.Connect(t, pg)
		if err := c.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE v = 'before') FROM `+my+`.ev`).Scan(&n, &before); err != nil {
			t.Fatal(err)
		}
		c.Close(context.Background())
		if n == 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target has %d rows, want the 30 inserted after the start time", n)
		}
	}
	if before != 0 {
		t.Fatalf("%d rows written before the start time were replayed", before)
	}
}

// TestMySQLTypeEdges: the extreme values of each MySQL type reach
// PostgreSQL and MariaDB unchanged, through the full load and through the
// binlog; a type Sluice cannot map stops the replication with the
// column's name; a zero date is an error naming the column, or NULL when
// SluiceSettings.ZeroDateAsNull says so.
func TestMySQLTypeEdges(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "myedge")
	pg := testenv.NewPGDatabase(t, "myedge_dst")
	dst := my + "_dst"
	t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
	testenv.MySQLExec(t, my, `CREATE TABLE e (id int PRIMARY KEY,
		ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, miu mediumint unsigned,
		i int, iu int unsigned, bi bigint, biu bigint unsigned, dec65 decimal(65,30), f float, d double,
		b64 bit(64), dt datetime(6), ts timestamp(6) NULL, dd date, tm time(6), y year, s varchar(20), bin varbinary(8))`)
	rows := []string{
		`(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -99999999999999999999999999999999999.999999999999999999999999999999,
		  -3.40282e38, -1.7976931348623157e308, b'0', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '1000-01-01', '-838:59:59.000000', 1901, '', X'')`,
		`(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 99999999999999999999999999999999999.999999999999999999999999999999,
		  3.40282e38, 1.7976931348623157e308, b'1111111111111111111111111111111111111111111111111111111111111111', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '9999-12-31', '838:59:59.000000', 2155, '😀😀😀😀', X'00FF00FF00FF00FF')`,
		`(3, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.000000000000000000000000000001, 1.17549e-38, 2.2250738585072014e-308, b'1', '2024-02-29 12:34:56.000001', '2024-02-29 12:34:56.000001', '2024-02-29', '-00:00:00.000001', 2000, 'quote '' back\\ tab	', X'5C00')`,
	}
	testenv.MySQLExec(t, my, `INSERT INTO e VALUES `+rows[0])
	mk := func(dsttarget task.Endpoint, id string, mappings json.RawMessage, settings string) *testenv.Running {
		return testenv.Start(t, &task.Task{
			ReplicationConfigIdentifier: id, ReplicationType: "full-load-and-cdc",
			SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: dsttarget,
			TableMappings: mappings, ReplicationSettings: []byte(settings),
		})
	}
	toPG := mk(testenv.PGEndpoint(pg), "myedge-pg", testenv.IncludeAll(my), `{}`)
	toMy := mk(testenv.MySQLEndpoint(), "myedge-my", renameSchema(my, dst), `{"ControlTablesSettings":{"ControlSchema":"`+dst+`"}}`)
	for _, r := range []*testenv.Running{toPG, toMy} {
		waitLoaded(t, r)
	}
	testenv.MySQLExec(t, my, `INSERT INTO e VALUES `+rows[1]+`, `+rows[2])
	myExprs := []string{"CAST(id AS CHAR)", "CAST(ti AS CHAR)", "CAST(tiu AS CHAR)", "CAST(si AS CHAR)", "CAST(siu AS CHAR)", "CAST(mi AS CHAR)", "CAST(miu AS CHAR)",
		"CAST(i AS CHAR)", "CAST(iu AS CHAR)", "CAST(bi AS CHAR)", "CAST(biu AS CHAR)", "CAST(dec65 AS CHAR)", "CAST(f AS CHAR)", "CAST(d AS CHAR)",
		"BIN(b64)", "DATE_FORMAT(dt, '%Y-%m-%d %H:%i:%s.%f')", "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "CAST(dd AS CHAR)", "CAST(tm AS CHAR)", "CAST(y AS CHAR)", "s", "HEX(bin)"}
	pgCols := []myCol{{"CAST(id AS CHAR)", "id::text"}, {"CAST(ti AS CHAR)", "ti::text"}, {"CAST(tiu AS CHAR)", "tiu::text"}, {"CAST(si AS CHAR)", "si::text"},
		{"CAST(siu AS CHAR)", "siu::text"}, {"CAST(mi AS CHAR)", "mi::text"}, {"CAST(miu AS CHAR)", "miu::text"}, {"CAST(i AS CHAR)", "i::text"},
		{"CAST(iu AS CHAR)", "iu::text"}, {"CAST(bi AS CHAR)", "bi::text"}, {"CAST(biu AS CHAR)", "biu::text"}, {"CAST(dec65 AS CHAR)", "dec65::text"},
		// PostgreSQL writes exponents with a sign: the same number.
		{"CAST(f AS CHAR)", "replace(f::text, 'e+', 'e')"}, {"CAST(d AS CHAR)", "replace(d::text, 'e+', 'e')"}, {"LPAD(BIN(b64), 64, '0')", "b64::text"},
		{"DATE_FORMAT(dt, '%Y-%m-%d %H:%i:%s.%f')", "to_char(dt, 'YYYY-MM-DD HH24:MI:SS.US')"},
		{"DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"}, {"CAST(dd AS CHAR)", "dd::text"},
		{"CAST(y AS CHAR)", "y::text"}, {"s", "s"}, {"LOWER(HEX(bin))", "encode(bin, 'hex')"}}
	waitMyEqual(t, toPG, my, pg, time.Minute, map[string][]myCol{"e": pgCols})
	waitRows(t, toMy, "e", time.Minute, func() []string { return mysqlRows(t, my, "e", myExprs) }, func() []string { return mysqlRows(t, dst, "e", myExprs) })
	// time(6) as interval: compare each value's seconds, since the two
	// print fractions differently.
	var got []string
	rowsPG, err := testenv.Connect(t, pg).Query(context.Background(), `SELECT extract(epoch FROM tm)::text FROM `+my+`.e ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rowsPG.Next() {
		var s string
		if err := rowsPG.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := "-3020399.000000,3020399.000000,-0.000001"; strings.Join(got, ",") != want {
		t.Errorf("time(6) as interval seconds = %s, want %s", strings.Join(got, ","), want)
	}
	if err := toPG.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := toMy.Stop(); err != nil {
		t.Fatal(err)
	}

	// A type with no PostgreSQL form is named with its column.
	testenv.MySQLExec(t, my, `CREATE TABLE geo (id int PRIMARY KEY, place point)`)
	err = task.Run(context.Background(), &task.Task{
		ReplicationConfigIdentifier: "myedge-geo", ReplicationType: "full-load",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg), TableMappings: testenv.IncludeAll(my),
	}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "column place has type point") {
		t.Fatalf("a point column: err = %v, want one naming column place and its type", err)
	}
	testenv.MySQLExec(t, my, `DROP TABLE geo`)

	// The zero date: an error that names the column, or NULL when asked.
	testenv.MySQLExec(t, my, `CREATE TABLE z (id int PRIMARY KEY, d datetime)`)
	conn := testenv.MySQLConnect(t, my)
	if _, err := conn.Execute(`SET SESSION sql_mode = ''`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Execute(`INSERT INTO z VALUES (1, '0000-00-00 00:00:00'), (2, '2024-01-01 00:00:00')`); err != nil {
		t.Fatal(err)
	}
	zeroTask := func(id, settings string) error {
		return task.Run(context.Background(), &task.Task{
			ReplicationConfigIdentifier: id, ReplicationType: "full-load",
			SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
			TableMappings:       json.RawMessage(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"` + my + `","table-name":"z"},"rule-action":"include"}]}`),
			ReplicationSettings: []byte(settings),
		}, nil, nil)
	}
	if err := zeroTask("myedge-zero", `{}`); err == nil || !strings.Contains(err.Error(), "column d holds the MySQL zero date") {
		t.Fatalf("a zero date: err = %v, want one naming column d", err)
	}
	if err := zeroTask("myedge-zero-null", `{"SluiceSettings":{"ZeroDateAsNull":true}}`); err != nil {
		t.Fatalf("a zero date with ZeroDateAsNull: %v", err)
	}
	var nulls, all int
	if err := testenv.Connect(t, pg).QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE d IS NULL), count(*) FROM `+my+`.z`).Scan(&nulls, &all); err != nil {
		t.Fatal(err)
	}
	if nulls != 1 || all != 2 {
		t.Fatalf("with ZeroDateAsNull: %d NULL dates of %d rows, want 1 of 2", nulls, all)
	}
}

// TestMySQLGeneratedColumns: generated columns, stored and virtual, arrive
// as the values the source computed, through the full load and the binlog.
func TestMySQLGeneratedColumns(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "mygen")
	pg := testenv.NewPGDatabase(t, "mygen_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE g (id int PRIMARY KEY, price decimal(10,2), qty int,
		total decimal(20,2) AS (price * qty) STORED, label varchar(40) AS (CONCAT('#', id, ' x', qty)) VIRTUAL)`)
	testenv.MySQLExec(t, my, `INSERT INTO g (id, price, qty) SELECT seq, seq * 1.5, seq % 7 FROM seq_1_to_300`)
	r := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "mygen", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my),
	})
	waitLoaded(t, r)
	testenv.MySQLExec(t, my, `INSERT INTO g (id, price, qty) SELECT seq, seq * 1.5, seq % 7 FROM seq_301_to_400`)
	testenv.MySQLExec(t, my, `UPDATE g SET qty = qty + 10 WHERE id % 3 = 0`)
	testenv.MySQLExec(t, my, `DELETE FROM g WHERE id % 11 = 0`)
	waitMyEqual(t, r, my, pg, time.Minute, map[string][]myCol{"g": {
		{"CAST(id AS CHAR)", "id::text"}, {"CAST(price AS CHAR)", "price::text"}, {"CAST(qty AS CHAR)", "qty::text"},
		{"CAST(total AS CHAR)", "total::text"}, {"label", "label"},
	}})
}

// TestMySQLGTIDStart: a CDC replication from MariaDB starts at a GTID
// position (@@gtid_binlog_pos, DMS's native MariaDB form) and replays
// exactly what came after it; its checkpoints are binlog positions.
func TestMySQLGTIDStart(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "mygtid")
	pg := testenv.NewPGDatabase(t, "mygtid_dst")
	testenv.MySQLExec(t, my, `CREATE TABLE ev (id int PRIMARY KEY, v text)`)
	testenv.MySQLExec(t, my, `INSERT INTO ev SELECT seq, 'before' FROM seq_1_to_20`)
	r := testenv.MySQLExec(t, "", "SELECT @@gtid_binlog_pos")
	gtid, _ := r.GetString(0, 0)
	if gtid == "" {
		t.Fatal("MariaDB reports no GTID position")
	}
	testenv.MySQLExec(t, my, `INSERT INTO ev SELECT seq, 'after' FROM seq_21_to_45`)
	testenv.MySQLExec(t, my, `UPDATE ev SET v = 'after, updated' WHERE id = 30`)
	testenv.Exec(t, pg, `CREATE SCHEMA `+my)
	testenv.Exec(t, pg, `CREATE TABLE `+my+`.ev (id int PRIMARY KEY, v text)`)
	run := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "mygtid", ReplicationType: "cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.PGEndpoint(pg),
		TableMappings: testenv.IncludeAll(my), CdcStartPosition: gtid,
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := run.Err(); err != nil {
			t.Fatal(err)
		}
		var n, before, updated int64
		c := testenv.Connect(t, pg)
		if err := c.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE v = 'before'), count(*) FILTER (WHERE v = 'after, updated') FROM `+my+`.ev`).Scan(&n, &before, &updated); err != nil {
			t.Fatal(err)
		}
		c.Close(context.Background())
		if before != 0 {
			t.Fatalf("%d rows from before the GTID position were replayed", before)
		}
		if n == 25 && updated == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target has %d rows (%d updated), want the 25 inserted after the GTID position with one updated", n, updated)
		}
	}
	if cp := run.Stats.Snapshot().Checkpoint; !strings.HasPrefix(cp, "checkpoint:mysql-binlog:") {
		t.Errorf("checkpoint %q, want a binlog position", cp)
	}
}
