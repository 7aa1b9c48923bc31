package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// renameSchema is a table mapping that selects every table of schema from
// and writes them into schema to.
func renameSchema(from, to string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"rules":[
		{"rule-type":"selection","rule-id":"1","rule-name":"all","object-locator":{"schema-name":%q,"table-name":"%%"},"rule-action":"include"},
		{"rule-type":"transformation","rule-id":"2","rule-name":"to","rule-target":"schema","object-locator":{"schema-name":%q},"rule-action":"rename","value":%q}]}`, from, from, to))
}

// mysqlRows returns a table's rows in MariaDB as sorted lines.
func mysqlRows(t *testing.T, db, table string, exprs []string) []string {
	t.Helper()
	conn := testenv.MySQLConnect(t, "")
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, e := range exprs {
		cols = append(cols, "COALESCE("+e+", '<null>')")
	}
	r, err := conn.Execute("SELECT CONCAT_WS('|', " + strings.Join(cols, ", ") + ") FROM " + db + "." + table)
	conn.Close()
	if err != nil {
		return []string{"query failed: " + err.Error()}
	}
	var out []string
	for i := range r.RowNumber() {
		s, _ := r.GetString(i, 0)
		out = append(out, s)
	}
	return sortedCopy(out)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// waitRows waits until src() and dst() return the same lines.
func waitRows(t *testing.T, r testenv.Replication, what string, timeout time.Duration, src, dst func() []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := r.Err(); err != nil {
			t.Fatalf("replication failed: %v", err)
		}
		a, b := src(), dst()
		if strings.Join(a, "\n") == strings.Join(b, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still differs after %s: %s", what, timeout, firstDiff(what, a, b))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMySQLToMySQL: MariaDB into MariaDB keeps every column type as the
// source declares it, through the full load, CDC (key changes, deletes, a
// keyless table) and a column added on the way.
func TestMySQLToMySQL(t *testing.T) {
	my := testenv.NewMySQLDatabase(t, "my2my")
	dst := my + "_dst"
	t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
	testenv.MySQLExec(t, my, `CREATE TABLE items (
		id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) NOT NULL, price decimal(12,2), qty int unsigned,
		big bigint unsigned, small tinyint, created datetime(6), ts timestamp(6) NULL, day date, flags bit(5),
		kind enum('new','paid','it''s shipped'), tags set('x','y','z'), data blob, bin binary(4), note text, t time, y year,
		f float, d double, doc json)`)
	testenv.MySQLExec(t, my, `CREATE TABLE nokey (a int, b varchar(10))`)
	fill := func(from, to int) {
		testenv.MySQLExec(t, my, fmt.Sprintf(`INSERT INTO items (name, price, qty, big, small, created, ts, day, flags, kind, tags, data, bin, note, t, y, f, d, doc)
			SELECT CONCAT('item ', seq, ' ✓ 😀'), seq * 1.25, 4294967295 - seq, 18446744073709551615 - CAST(seq AS UNSIGNED), CAST(seq %% 256 AS SIGNED) - 128,
			       '2024-02-29 23:59:59.123456' + INTERVAL seq SECOND, '2024-06-01 12:00:00.5' + INTERVAL seq MINUTE, '1999-12-31' + INTERVAL seq DAY,
			       seq %% 32, ELT(seq %% 3 + 1, 'new', 'paid', 'it''s shipped'), ELT(seq %% 4 + 1, '', 'x', 'x,z', 'x,y,z'),
			       UNHEX(CONCAT('00ff', LPAD(HEX(seq), 8, '0'))), UNHEX(LPAD(HEX(seq %% 256), 2, '0')), IF(seq %% 10 = 0, NULL, CONCAT('tab\t nl\n q'' back\\ ', seq)),
			       IF(seq %% 2 = 0, '-838:59:59', '100:00:01'), 1901 + seq %% 254, seq + 0.5, seq / 4, CONCAT('{"n": ', seq, '}')
			FROM seq_%d_to_%d`, from, to))
	}
	fill(1, 2000)
	testenv.MySQLExec(t, my, `INSERT INTO nokey SELECT seq, CONCAT('b', seq) FROM seq_1_to_100`)
	r := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "my2my", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.MySQLEndpoint(),
		TableMappings: renameSchema(my, dst),
		// The control table goes with the test's data: every test shares
		// the server.
		ReplicationSettings: []byte(`{"ControlTablesSettings":{"ControlSchema":"` + dst + `"}}`),
	})
	waitLoaded(t, r)
	fill(2001, 2300)
	testenv.MySQLExec(t, my, `UPDATE items SET kind = 'paid', tags = 'y', flags = b'10101', doc = '{"changed": true}', ts = NULL, bin = X'00000000' WHERE id % 5 = 0`)
	testenv.MySQLExec(t, my, `UPDATE items SET id = id + 100000 WHERE id % 97 = 0`)
	testenv.MySQLExec(t, my, `DELETE FROM items WHERE id % 13 = 0`)
	testenv.MySQLExec(t, my, `ALTER TABLE items ADD COLUMN extra varchar(8) NOT NULL DEFAULT 'x' AFTER name`)
	testenv.MySQLExec(t, my, `UPDATE items SET extra = 'yes' WHERE id % 3 = 0`)
	testenv.MySQLExec(t, my, `UPDATE nokey SET b = 'changed' WHERE a % 3 = 0`)
	testenv.MySQLExec(t, my, `DELETE FROM nokey WHERE a % 7 = 0`)
	testenv.MySQLExec(t, my, `INSERT INTO nokey VALUES (1, 'b1'), (NULL, NULL)`)
	testenv.MySQLExec(t, my, `CREATE TABLE born (id int unsigned AUTO_INCREMENT PRIMARY KEY, v varchar(20) NOT NULL, e enum('a','b'))`)
	testenv.MySQLExec(t, my, `INSERT INTO born (v, e) VALUES ('first', 'b'), ('second', NULL)`)
	exprs := []string{"CAST(id AS CHAR)", "name", "extra", "CAST(price AS CHAR)", "CAST(qty AS CHAR)", "CAST(big AS CHAR)", "CAST(small AS CHAR)",
		"DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f')", "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", "CAST(day AS CHAR)", "LPAD(BIN(flags), 5, '0')",
		"kind", "tags", "HEX(data)", "HEX(bin)", "note", "CAST(t AS CHAR)", "CAST(y AS CHAR)", "CAST(f AS CHAR)", "CAST(d AS CHAR)", "doc"}
	waitRows(t, r, "items", time.Minute, func() []string { return mysqlRows(t, my, "items", exprs) }, func() []string { return mysqlRows(t, dst, "items", exprs) })
	nk := []string{"COALESCE(CAST(a AS CHAR), 'null')", "b"}
	waitRows(t, r, "nokey", time.Minute, func() []string { return mysqlRows(t, my, "nokey", nk) }, func() []string { return mysqlRows(t, dst, "nokey", nk) })
	bn := []string{"CAST(id AS CHAR)", "v", "e"}
	waitRows(t, r, "born", time.Minute, func() []string { return mysqlRows(t, my, "born", bn) }, func() []string { return mysqlRows(t, dst, "born", bn) })
	// The declarations are the source's.
	decl := func(db string) []string {
		return mysqlRows(t, "information_schema", "COLUMNS WHERE TABLE_SCHEMA = '"+db+"' AND TABLE_NAME = 'items'", []string{"COLUMN_NAME", "COLUMN_TYPE", "IS_NULLABLE"})
	}
	if a, b := decl(my), decl(dst); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("column declarations differ: %s", firstDiff("items", a, b))
	}
}

// TestPostgresToMySQL: a PostgreSQL source into MariaDB, through the
// PostgreSQL → MySQL type map, under a full load and CDC.
func TestPostgresToMySQL(t *testing.T) {
	pg := testenv.NewPGDatabase(t, "pg2my")
	dst := "sluice_pg2my_" + strings.TrimPrefix(pg, "sluice_pg2my_")
	t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
	testenv.Exec(t, pg, `CREATE TABLE acct (id bigserial PRIMARY KEY, n integer, s smallint, amount numeric(14,3), name text NOT NULL,
		code varchar(12), flag boolean, raw bytea, day date, at timestamp(6), atz timestamptz, doc jsonb, uid uuid, r real, d double precision, b bit(6))`)
	fill := func(from, to int) {
		testenv.Exec(t, pg, fmt.Sprintf(`INSERT INTO acct (n, s, amount, name, code, flag, raw, day, at, atz, doc, uid, r, d, b)
			SELECT g, (g %% 30000)::smallint, g * 1.125, 'name ' || g || E' ✓\t''q''\\', 'c' || g, g %% 2 = 0, decode(lpad(to_hex(g), 8, '0'), 'hex'),
			       date '2000-01-01' + g, timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second', timestamptz '2024-01-01 00:00:00+02' + g * interval '1 minute',
			       jsonb_build_object('g', g), md5(g::text)::uuid, g + 0.25, g / 8.0, (g %% 64)::bit(6)
			FROM generate_series(%d, %d) g`, from, to))
	}
	fill(1, 2000)
	r := testenv.Start(t, &task.Task{
		ReplicationConfigIdentifier: "pg2my", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.PGEndpoint(pg), TargetEndpoint: testenv.MySQLEndpoint(),
		TableMappings:       renameSchema("public", dst),
		ReplicationSettings: []byte(`{"ControlTablesSettings":{"ControlSchema":"` + dst + `"}}`),
	})
	waitLoaded(t, r)
	fill(2001, 2200)
	testenv.Exec(t, pg, `UPDATE acct SET flag = NULL, code = NULL, amount = -amount WHERE id % 7 = 0`)
	testenv.Exec(t, pg, `DELETE FROM acct WHERE id % 11 = 0`)
	my := []string{"CAST(id AS CHAR)", "CAST(n AS CHAR)", "CAST(s AS CHAR)", "CAST(amount AS CHAR)", "name", "code", "CAST(flag AS CHAR)", "LOWER(HEX(raw))",
		"CAST(day AS CHAR)", "DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f')", "DATE_FORMAT(atz, '%Y-%m-%d %H:%i:%s.%f')", "JSON_EXTRACT(doc, '$.g')", "uid",
		"CAST(r AS CHAR)", "CAST(d AS CHAR)", "LPAD(BIN(b), 6, '0')"}
	pgx := []string{"id::text", "n::text", "s::text", "amount::text", "name", "code", "CASE WHEN flag THEN '1' WHEN NOT flag THEN '0' END", "encode(raw, 'hex')",
		"day::text", "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')", "to_char(atz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", "(doc->'g')::text", "uid::text",
		"r::text", "d::text", "b::text"}
	pgRows := func() []string {
		var exprs []string
		for _, e := range pgx {
			exprs = append(exprs, "COALESCE("+e+", '<null>')")
		}
		rows, err := testenv.Connect(t, pg).Query(context.Background(), "SELECT concat_ws('|', "+strings.Join(exprs, ", ")+") FROM acct")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return sortedCopy(out)
	}
	waitRows(t, r, "acct", time.Minute, pgRows, func() []string { return mysqlRows(t, dst, "acct", my) })
}

// TestMySQLToMySQLSysbench: a sysbench database written to by `sysbench
// oltp_write_only` through its full load and CDC into a MariaDB target,
// with the replicator killed with SIGKILL twice on the way: every table
// ends equal to the source, nothing lost and nothing applied twice, and
// the statistics count every row once.
func TestMySQLToMySQLSysbench(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: run `make services` (as root)")
	}
	my := testenv.NewMySQLDatabase(t, "my2mysb")
	dst := my + "_dst"
	t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
	const tables = 4
	sb := func(args ...string) *exec.Cmd {
		base := []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=" + testenv.MySQLHost, "--mysql-port=" + testenv.MySQLPort,
			"--mysql-user=" + testenv.MySQLUser, "--mysql-db=" + my, fmt.Sprintf("--tables=%d", tables), "--table-size=20000"}
		return exec.Command("sysbench", append(base, args...)...)
	}
	if out, err := sb("--threads=2", "prepare").CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	dir := t.TempDir()
	tf := writeTask(t, dir, &task.Task{
		ReplicationConfigIdentifier: "my2mysb", ReplicationType: "full-load-and-cdc",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.MySQLEndpoint(),
		TableMappings:       renameSchema(my, dst),
		ReplicationSettings: []byte(`{"ControlTablesSettings":{"ControlSchema":"` + dst + `"},"SluiceSettings":{"ChunkPages":64}}`),
	})
	load := sb("--threads=2", "--time=12", "--report-interval=0", "run")
	var out strings.Builder
	load.Stdout, load.Stderr = &out, &out
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	p := startReplicator(t, tf, dir)
	for range 2 {
		time.Sleep(3 * time.Second)
		p.kill(t)
		p = startReplicator(t, tf, dir)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("sysbench run: %v\n%s", err, out.String())
	}
	cols := []string{"CAST(id AS CHAR)", "CAST(k AS CHAR)", "c", "pad"}
	for i := 1; i <= tables; i++ {
		table := fmt.Sprintf("sbtest%d", i)
		waitRows(t, p, table, 2*time.Minute, func() []string { return mysqlRows(t, my, table, cols) }, func() []string { return mysqlRows(t, dst, table, cols) })
	}
	names := make([]string, tables)
	for i := range names {
		names[i] = fmt.Sprintf("sbtest%d", i+1)
	}
	requireCountsReconcile(t, p, func(table string) int64 {
		n, _ := testenv.MySQLExec(t, my, "SELECT COUNT(*) FROM "+table).GetInt(0, 0)
		return n
	}, names...)
}

// TestMySQLTargetWithoutLocalInfile: a server that refuses LOAD DATA LOCAL
// INFILE (local_infile off, MySQL 8's default) is loaded with multi-row
// INSERTs, to the same rows.
func TestMySQLTargetWithoutLocalInfile(t *testing.T) {
	r := testenv.MySQLExec(t, "", "SELECT @@local_infile")
	was, _ := r.GetInt(0, 0)
	testenv.MySQLExec(t, "", "SET GLOBAL local_infile = 0")
	t.Cleanup(func() { testenv.MySQLExec(t, "", fmt.Sprintf("SET GLOBAL local_infile = %d", was)) })
	my := testenv.NewMySQLDatabase(t, "mynoinfile")
	dst := my + "_dst"
	t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
	testenv.MySQLExec(t, my, `CREATE TABLE t (id int PRIMARY KEY, s varchar(30), b varbinary(8), f bit(3), d datetime(3))`)
	testenv.MySQLExec(t, my, `INSERT INTO t SELECT seq, CONCAT('s ', seq, ' tab\tq'''), UNHEX(LPAD(HEX(seq), 6, '0')), seq % 8, '2025-01-01 00:00:00.5' + INTERVAL seq HOUR FROM seq_1_to_3000`)
	err := task.Run(context.Background(), &task.Task{
		ReplicationConfigIdentifier: "mynoinfile", ReplicationType: "full-load",
		SourceEndpoint: testenv.MySQLEndpoint(), TargetEndpoint: testenv.MySQLEndpoint(),
		TableMappings:       renameSchema(my, dst),
		ReplicationSettings: []byte(`{"ControlTablesSettings":{"ControlSchema":"` + dst + `"}}`),
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	exprs := []string{"CAST(id AS CHAR)", "s", "HEX(b)", "BIN(f)", "CAST(d AS CHAR)"}
	if a, b := mysqlRows(t, my, "t", exprs), mysqlRows(t, dst, "t", exprs); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("loaded with INSERTs: %s", firstDiff("t", a, b))
	}
}
