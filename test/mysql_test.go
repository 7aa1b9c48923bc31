package test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

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
