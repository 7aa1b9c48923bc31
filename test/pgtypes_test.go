package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// typeTable describes one table of testdata/pgtypes.sql for the CDC changes
// and the per-column comparison.
type typeTable struct {
	name string // SQL name, quoted where needed
	stat string // source table name as the statistics report it
	key  string // integer key column (SQL); seed rows have keys 1..rows
	rows int
	// cols are the written columns besides the key; notNull lists those
	// that may not be set to NULL; computed are only compared.
	cols, notNull, computed []string
	// overriding is set for a GENERATED ALWAYS identity key.
	overriding bool
}

var typeTables = []typeTable{
	{name: "ints", key: "id", rows: 5, cols: []string{"s", "i", "b"}},
	{name: "nums", key: "id", rows: 9, cols: []string{"n", "n40", "n10", "nneg"}},
	{name: "floats", key: "id", rows: 11, cols: []string{"r", "d"}},
	{name: "texts", key: "id", rows: 8, cols: []string{"t", "vc", "c", "qc"}},
	{name: "bytes", key: "id", rows: 5, cols: []string{"b"}},
	{name: "bools", key: "id", rows: 3, cols: []string{"b"}},
	{name: "times", key: "id", rows: 7, cols: []string{"d", "t", "ttz", "ts", "tstz", "iv", "ts0"}},
	{name: "misc", key: "id", rows: 4, cols: []string{"u", "o", "m", "b8", "vb", "x", "tsv", "ip", "net", "mac", "mac8", "pt", "bx"}},
	{name: "jsons", key: "id", rows: 7, cols: []string{"j", "jb"}},
	{name: "arrays", key: "id", rows: 4, cols: []string{"ia", "ta", "ia2", "lb", "fa", "ba", "na"}},
	{name: "usertypes", key: "id", rows: 4, cols: []string{"e", "ea", "dom", "comp", "fr", "compa"}},
	{name: "ranges", key: "id", rows: 5, cols: []string{"i4", "tz", "nr", "dr", "i8m"}},
	{name: "serials", key: "id", rows: 5, cols: []string{"big", "v"}, notNull: []string{"big"}},
	{name: "idents", key: "id", rows: 4, cols: []string{"v"}, computed: []string{"vlen"}, overriding: true},
	{name: "events", key: "id", rows: 6, cols: []string{"k", "v"}, notNull: []string{"k"}},
	{name: "dropped", key: "id", rows: 4, cols: []string{"v", "w"}},
	{name: `"Order Items"`, stat: "Order Items", key: `"Order ID"`, rows: 3,
		cols: []string{`"select"`, `"Mixed Case"`, `"a""b"`, `"from"`, `"spaced col"`, `"é🎉"`}},
}

// typeDigestTables are compared as row sets: every table, and the leaf
// partitions, so rows must land in the partition their bound says.
func typeDigestTables() []string {
	var out []string
	for _, tt := range typeTables {
		out = append(out, tt.name)
	}
	return append(out, "events_2023", "events_2024", "events_default", "events_2025_h1", "events_2025_rest")
}

// TestPostgresTypesRoundTrip replicates a table per family of PostgreSQL types,
// with edge values and NULLs, through the full load (binary COPY for built-in
// types, text COPY for tables with user-defined types) and through CDC
// (inserts, updates to other edge values, to NULL and back, deletes), in
// transactional and batch apply modes, and requires the target to hold exactly
// the source's values: row-set digests of every table and partition, the text
// of every column, sequences' next values, and the indexes.
func TestPostgresTypesRoundTrip(t *testing.T) {
	t.Parallel()
	schema, err := os.ReadFile("testdata/pgtypes.sql")
	if err != nil {
		t.Fatal(err)
	}
	applyModes(t, func(t *testing.T, settings string) {
		src := testenv.NewPGDatabase(t, "types_src")
		dst := testenv.NewPGDatabase(t, "types_dst")
		testenv.Exec(t, src, string(schema))

		tk := testenv.PGTask(t, uniqueID("types"), runtime.FullLoadAndCDC, src, dst)
		tk.ReplicationSettings = json.RawMessage(settings)
		r := testenv.Start(t, tk)
		p := newPair(t, src, dst)

		// Full load.
		waitPhase(t, r, "cdc", 20*time.Second)
		checkTypeTables(t, r, p, "after the full load")
		if t.Failed() {
			t.FailNow()
		}
		snap := r.Stats.Snapshot()
		for _, tt := range typeTables {
			ts := tableStats(snap, tt.statName())
			if ts == nil || ts.FullLoadRows != int64(tt.rows) {
				t.Errorf("%s: full load rows = %v, want %d", tt.statName(), ts, tt.rows)
			}
		}
		checkSequences(t, p, "after the full load")
		checkIndexes(t, p.d, map[string]string{
			"events":      "events_v_idx",
			"Order Items": `Order Items "idx"`,
		})

		// CDC.
		for _, tt := range typeTables {
			for _, sql := range tt.changes() {
				execSQL(t, p.s, sql)
			}
		}
		for _, tt := range typeTables {
			// Each seed row copied, one more inserted, two deleted: the
			// statements did what they say.
			if n := queryString(t, p.s, "SELECT count(*) FROM "+tt.name); n != fmt.Sprint(2*tt.rows-1) {
				t.Errorf("source %s has %s rows after the CDC statements, want %d", tt.name, n, 2*tt.rows-1)
			}
		}
		checkTypeTables(t, r, p, "after CDC")
		snap = r.Stats.Snapshot()
		for _, tt := range typeTables {
			ts := tableStats(snap, tt.statName())
			if ts == nil {
				t.Errorf("%s: no statistics", tt.statName())
				continue
			}
			// A copy of each seed row and one more row were inserted;
			// (rows moving between partitions are a delete and an insert).
			if ts.Inserts < int64(tt.rows+1) || ts.Updates < 1 || ts.Deletes < 2 {
				t.Errorf("%s: CDC counted inserts/updates/deletes %d/%d/%d, want at least %d/1/2",
					tt.statName(), ts.Inserts, ts.Updates, ts.Deletes, tt.rows+1)
			}
			if ts.ApplyMisses != 0 || len(ts.Warnings) != 0 {
				t.Errorf("%s: %d apply misses, warnings %q", tt.statName(), ts.ApplyMisses, ts.Warnings)
			}
		}
		if err := r.Stop(); err != nil {
			t.Fatalf("graceful stop: %v", err)
		}
		checkSequences(t, p, "after the stop")
	})
}

func (tt typeTable) statName() string {
	if tt.stat != "" {
		return tt.stat
	}
	return tt.name
}

// changes returns the CDC statements for a table, one transaction each:
// every seed row is copied to key+1000 (inserts carry every edge value); every
// seed row k then takes the values of seed row k+1 (updates carry every edge
// value, including to and from NULL); row 1002 is set to NULL and back and
// row 1003 to NULL; a transaction inserts and updates one row; rows 3 and
// 1000+rows are deleted.
func (tt typeTable) changes() []string {
	cols := strings.Join(tt.cols, ", ")
	over := ""
	if tt.overriding {
		over = " OVERRIDING SYSTEM VALUE"
	}
	var fromY, toNull []string
	for _, c := range tt.cols {
		fromY = append(fromY, c+" = y."+c)
		if !contains(tt.notNull, c) {
			toNull = append(toNull, c+" = NULL")
		}
	}
	setY := strings.Join(fromY, ", ")
	k, n := tt.key, tt.rows
	out := []string{
		fmt.Sprintf("INSERT INTO %s (%s, %s)%s SELECT %s + 1000, %s FROM %s WHERE %s <= %d", tt.name, k, cols, over, k, cols, tt.name, k, n),
		fmt.Sprintf("UPDATE %s AS x SET %s FROM %s AS y WHERE x.%s <= %d AND y.%s = 1000 + x.%s %% %d + 1", tt.name, setY, tt.name, k, n, k, k, n),
	}
	if len(toNull) > 0 {
		out = append(out,
			fmt.Sprintf("UPDATE %s SET %s WHERE %s IN (1002, 1003)", tt.name, strings.Join(toNull, ", "), k),
			fmt.Sprintf("UPDATE %s AS x SET %s FROM %s AS y WHERE x.%s = 1002 AND y.%s = 1", tt.name, setY, tt.name, k, k))
	}
	out = append(out,
		fmt.Sprintf("INSERT INTO %s (%s, %s)%s SELECT 2001, %s FROM %s WHERE %s = 1001; UPDATE %s AS x SET %s FROM %s AS y WHERE x.%s = 2001 AND y.%s = 1004",
			tt.name, k, cols, over, cols, tt.name, k, tt.name, setY, tt.name, k, k),
		fmt.Sprintf("DELETE FROM %s WHERE %s IN (3, %d)", tt.name, k, 1000+n))
	return out
}

// checkTypeTables waits for the type tables to be equal, then compares them
// column by column (so a failure names the column and key) and as row sets.
func checkTypeTables(t *testing.T, r *testenv.Running, p *dbPair, when string) {
	t.Helper()
	if !p.wait(r, 20*time.Second, typeDigestTables()...) {
		t.Errorf("%s: tables still differ after 20s", when)
	}
	for _, tt := range typeTables {
		cols := append(append(append([]string{}, tt.cols...), tt.computed...), "tableoid::regclass")
		for _, c := range cols {
			p.compareColumn(tt.name, tt.key, c, when)
		}
	}
	p.requireEqual(when, typeDigestTables()...)
	// The same row-set check with testenv's helper, in a subtest so that the
	// session it opens per table and call is closed right after.
	t.Run("row sets "+when, func(t *testing.T) {
		testenv.RequireEqualTables(t, p.src, p.dst, typeDigestTables()...)
	})
}

// checkSequences requires every sequence that testdata/pgtypes.sql owns to
// give the same next value on the target as on the source.
func checkSequences(t *testing.T, p *dbPair, when string) {
	t.Helper()
	for _, sc := range [][2]string{
		{"public.serials", "id"}, {"public.serials", "big"}, {"public.idents", "id"}, {`public."Order Items"`, "Order ID"},
	} {
		q := "SELECT nextval(pg_get_serial_sequence($1, $2))"
		s := queryString(t, p.s, q, sc[0], sc[1])
		d := queryString(t, p.d, q, sc[0], sc[1])
		if s != d {
			t.Errorf("%s: next value of the sequence of %s.%s: source %s, target %s", when, sc[0], sc[1], s, d)
		}
	}
}

// checkIndexes requires each table (target name) to have the named index.
func checkIndexes(t *testing.T, conn *pgx.Conn, want map[string]string) {
	t.Helper()
	for table, index := range want {
		n := queryString(t, conn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 AND indexname = $2", table, index)
		if n != "1" {
			t.Errorf("index %q on %q: found %s on the target, want 1", index, table, n)
		}
	}
}

// --- helpers shared with pgedge_test.go ---

var idSeq atomic.Int64

// uniqueID returns a ReplicationConfigIdentifier unique across concurrent
// test processes (slots are per server).
func uniqueID(label string) string {
	return fmt.Sprintf("%s-%d-%d", label, os.Getpid(), idSeq.Add(1))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitPhase waits until the replication reports phase (full-load, cdc).
func waitPhase(t *testing.T, r *testenv.Running, phase runtime.Phase, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.Stats.Snapshot().Phase != phase {
		if err := r.Err(); err != nil {
			t.Fatalf("replication failed before phase %s: %v", phase, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("phase %q not reached after %s (phase is %q)", phase, timeout, r.Stats.Snapshot().Phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dbPair holds one session on each of the source and target databases.
// (testenv.TableDigest opens a session per call that stays open until the
// test ends, so polling with it exhausts max_connections; these helpers
// compute the same digest on long-lived sessions.)
type dbPair struct {
	t        *testing.T
	src, dst string
	s, d     *pgx.Conn
}

func newPair(t *testing.T, src, dst string) *dbPair {
	return &dbPair{t: t, src: src, dst: dst, s: testenv.Connect(t, src), d: testenv.Connect(t, dst)}
}

// digest is testenv.TableDigest on a given session: the row count and the md5
// of the rows' text forms in order, so tables compare as row sets.
func digest(t *testing.T, conn *pgx.Conn, table string) (int64, string) {
	t.Helper()
	var n int64
	var d *string
	err := conn.QueryRow(context.Background(),
		fmt.Sprintf("SELECT count(*), md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM %s x", table)).Scan(&n, &d)
	if err != nil {
		t.Fatalf("digest %s: %v", table, err)
	}
	if d == nil {
		return n, ""
	}
	return n, *d
}

// equal reports whether the tables have equal row sets.
func (p *dbPair) equal(tables ...string) bool {
	for _, tb := range tables {
		sn, sd := digest(p.t, p.s, tb)
		dn, dd := digest(p.t, p.d, tb)
		if sn != dn || sd != dd {
			return false
		}
	}
	return true
}

// wait waits until the tables have equal row sets and reports whether they
// do; it fails the test at once if the replication ends.
func (p *dbPair) wait(r testenv.Replication, timeout time.Duration, tables ...string) bool {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if r != nil {
			if err := r.Err(); err != nil {
				p.t.Fatalf("replication failed: %v", err)
			}
		}
		if p.equal(tables...) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEqual is testenv.WaitEqual on the pair's sessions: it fails the test
// with the differing tables' rows if they are not equal within timeout.
func (p *dbPair) waitEqual(r testenv.Replication, timeout time.Duration, tables ...string) {
	p.t.Helper()
	if !p.wait(r, timeout, tables...) {
		p.requireEqual("after "+timeout.String(), tables...)
		p.t.FailNow()
	}
}

// requireEqual fails the test, listing the rows on one side only, unless
// every table has the same row set in both databases.
func (p *dbPair) requireEqual(when string, tables ...string) {
	p.t.Helper()
	for _, tb := range tables {
		sn, sd := digest(p.t, p.s, tb)
		dn, dd := digest(p.t, p.d, tb)
		if sn == dn && sd == dd {
			continue
		}
		srcRows, dstRows := p.rows(p.s, tb), p.rows(p.d, tb)
		p.t.Errorf("%s: table %s differs: source %d rows, target %d rows\nonly on the source: %s\nonly on the target: %s",
			when, tb, sn, dn, strings.Join(minus(srcRows, dstRows), "\n  "), strings.Join(minus(dstRows, srcRows), "\n  "))
	}
}

// rows returns the text forms of a table's rows (at most 10000).
func (p *dbPair) rows(conn *pgx.Conn, table string) []string {
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT x::text FROM %s x ORDER BY 1 LIMIT 10000", table))
	if err != nil {
		p.t.Fatalf("read %s: %v", table, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		p.t.Fatalf("read %s: %v", table, err)
	}
	return out
}

// minus returns the elements of a that b lacks, counting duplicates.
func minus(a, b []string) []string {
	have := map[string]int{}
	for _, x := range b {
		have[x]++
	}
	var out []string
	for _, x := range a {
		if have[x] > 0 {
			have[x]--
			continue
		}
		if len(x) > 200 {
			x = x[:200] + "..."
		}
		out = append(out, x)
	}
	return out
}

// columnValues returns key text → column text (nil for NULL) of a table.
func columnValues(t *testing.T, conn *pgx.Conn, table, key, col string) map[string]*string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT %s::text, (%s)::text FROM %s", key, col, table))
	if err != nil {
		t.Fatalf("read %s.%s: %v", table, col, err)
	}
	out := map[string]*string{}
	for rows.Next() {
		var k string
		var v *string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s.%s: %v", table, col, err)
	}
	return out
}

// compareColumn requires one column to have the same text in both databases
// for every key, and names the column and key when it does not.
func (p *dbPair) compareColumn(table, key, col, when string) {
	t := p.t
	t.Helper()
	s := columnValues(t, p.s, table, key, col)
	d := columnValues(t, p.d, table, key, col)
	var keys []string
	for k := range s {
		keys = append(keys, k)
	}
	for k := range d {
		if _, ok := s[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	show := func(v *string, ok bool) string {
		switch {
		case !ok:
			return "(no row)"
		case v == nil:
			return "NULL"
		case len(*v) > 120:
			return fmt.Sprintf("%q... (%d bytes)", (*v)[:120], len(*v))
		}
		return fmt.Sprintf("%q", *v)
	}
	for _, k := range keys {
		sv, sok := s[k]
		dv, dok := d[k]
		if sok && dok && (sv == nil) == (dv == nil) && (sv == nil || *sv == *dv) {
			continue
		}
		t.Errorf("%s: %s.%s at %s = %s: source %s, target %s", when, table, col, key, k, show(sv, sok), show(dv, dok))
	}
}

// queryString runs a query that returns one value and returns it as text.
func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var v *string
	if err := conn.QueryRow(context.Background(), "SELECT x::text FROM ("+sql+") AS q(x)", args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if v == nil {
		return "NULL"
	}
	return *v
}

// execSQL runs SQL on a session and fails the test on error.
func execSQL(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// tableStats finds a table's statistics by source name.
func tableStats(s runtime.Snapshot, name string) *runtime.TableSnapshot {
	for i := range s.Tables {
		if s.Tables[i].TableName == name {
			return &s.Tables[i]
		}
	}
	return nil
}

// runTask runs a task in the foreground until it ends or timeout passes
// (a timeout is a graceful stop, which returns nil).
func runTask(t *testing.T, tk *task.Task, timeout time.Duration) (*runtime.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stats := runtime.NewStats()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return stats, task.Run(ctx, tk, stats, log)
}
