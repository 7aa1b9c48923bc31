package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgsource"
	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// applyModes runs f as a parallel subtest per apply mode, with the
// ReplicationSettings that select it.
func applyModes(t *testing.T, f func(t *testing.T, settings string)) {
	for _, batch := range []bool{false, true} {
		name := "transactional"
		if batch {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, fmt.Sprintf(`{"TargetMetadata":{"BatchApplyEnabled":%v}}`, batch))
		})
	}
}

// setup creates source and target databases, runs schema on the source and
// returns a task (full-load-and-cdc unless typ says otherwise) between them.
func setup(t *testing.T, label, typ, settings, schema string) (*dbPair, *task.Task) {
	t.Helper()
	src := testenv.NewPGDatabase(t, label+"_src")
	dst := testenv.NewPGDatabase(t, label+"_dst")
	p := newPair(t, src, dst)
	if schema != "" {
		execSQL(t, p.s, schema)
	}
	tk := testenv.PGTask(t, uniqueID(strings.ReplaceAll(label, "_", "-")), typ, src, dst)
	if settings != "" {
		tk.ReplicationSettings = json.RawMessage(settings)
	}
	return p, tk
}

// startCDC starts tk and waits until the full load is done and the tables
// are equal.
func startCDC(t *testing.T, p *dbPair, tk *task.Task, tables ...string) *testenv.Running {
	t.Helper()
	r := testenv.Start(t, tk)
	waitPhase(t, r, "cdc", 20*time.Second)
	p.waitEqual(r, 10*time.Second, tables...)
	return r
}

// requireNoMisses fails the test if an update or delete found no target row.
func requireNoMisses(t *testing.T, r *testenv.Running, tables ...string) {
	t.Helper()
	snap := r.Stats.Snapshot()
	for _, name := range tables {
		ts := tableStats(snap, name)
		if ts == nil {
			t.Errorf("%s: no statistics", name)
			continue
		}
		if ts.ApplyMisses != 0 {
			t.Errorf("%s: %d updates/deletes found no row on the target (warnings %q)", name, ts.ApplyMisses, ts.Warnings)
		}
	}
}

// TestCDCUnchangedToast updates only the small column of rows whose large
// column is stored out of line (TOAST), so the stream carries the large value
// as "unchanged"; the target must keep it.
func TestCDCUnchangedToast(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "toast", runtime.FullLoadAndCDC, settings, `
CREATE TABLE docs (id int PRIMARY KEY, big text, small int);
INSERT INTO docs SELECT 1, string_agg(md5(i::text), ''), 1 FROM generate_series(1, 6250) i;
INSERT INTO docs VALUES (2, 'short', 2);`)
		r := startCDC(t, p, tk, "docs")

		execSQL(t, p.s, `UPDATE docs SET small = 10 WHERE id = 1`)
		// Inserted and updated in one transaction (batch apply merges them),
		// then updated again on its own.
		execSQL(t, p.s, `INSERT INTO docs SELECT 3, string_agg(md5((-i)::text), ''), 3 FROM generate_series(1, 6250) i; UPDATE docs SET small = 30 WHERE id = 3`)
		execSQL(t, p.s, `UPDATE docs SET small = 31 WHERE id = 3`)
		// Key change with the large value unchanged.
		execSQL(t, p.s, `UPDATE docs SET id = 4, small = 40 WHERE id = 3`)
		execSQL(t, p.s, `UPDATE docs SET small = 20 WHERE id = 2`)

		// The source really stores the large values out of line (TOAST),
		// which is what makes the stream send them as unchanged.
		if ext := queryString(t, p.s, `SELECT pg_relation_size(reltoastrelid) > 300000 FROM pg_class WHERE oid = 'public.docs'::regclass`); ext != "true" {
			t.Fatalf("the source did not store the large values out of line")
		}
		p.waitEqual(r, 10*time.Second, "docs")
		for _, id := range []string{"1", "4"} {
			s := queryString(t, p.s, `SELECT md5(big) || ' ' || length(big) FROM docs WHERE id = $1`, id)
			d := queryString(t, p.d, `SELECT md5(big) || ' ' || length(big) FROM docs WHERE id = $1`, id)
			if s != d || !strings.HasSuffix(s, " 200000") {
				t.Errorf("docs id %s: large value on the source %q, on the target %q", id, s, d)
			}
		}
		requireNoMisses(t, r, "docs")
		testenv.RequireEqualTables(t, p.src, p.dst, "docs")
	})
}

// TestCDCPrimaryKeyChange moves rows to new keys: the target must delete the
// old key and hold the new one, also when keys are swapped in a transaction.
func TestCDCPrimaryKeyChange(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "pkchange", runtime.FullLoadAndCDC, settings, `
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 6) i;`)
		r := startCDC(t, p, tk, "t")

		execSQL(t, p.s, `UPDATE t SET id = id + 1000 WHERE id <= 2`)
		execSQL(t, p.s, `UPDATE t SET id = 3000, v = 'moved' WHERE id = 3`)
		// Swap the rows of keys 4 and 5 through key 0, in one transaction.
		execSQL(t, p.s, `UPDATE t SET id = 0 WHERE id = 4; UPDATE t SET id = 4 WHERE id = 5; UPDATE t SET id = 5 WHERE id = 0`)
		// Move a row away and insert a new row under its old key.
		execSQL(t, p.s, `UPDATE t SET id = 7 WHERE id = 6; INSERT INTO t VALUES (6, 'new six')`)

		p.waitEqual(r, 10*time.Second, "t")
		want := "1001:v1 1002:v2 3000:moved 4:v5 5:v4 6:new six 7:v6"
		for _, c := range []*pgx.Conn{p.s, p.d} {
			got := queryString(t, c, `SELECT string_agg(id || ':' || v, ' ' ORDER BY id::text) FROM t`)
			if got != want {
				t.Errorf("rows of t in %s: %q, want %q", c.Config().Database, got, want)
			}
		}
		requireNoMisses(t, r, "t")
	})
}

// TestCDCUniqueValueSwap swaps the values of a unique column between rows
// in one transaction, as the source must (through a free value), and
// updates, deletes and re-inserts rows of a table without other unique
// constraints in one transaction. Batch apply merges each transaction's
// changes per key and writes them in no particular order: the swapped
// values must not collide on the target, and rows updated in place must
// end as on the source.
func TestCDCUniqueValueSwap(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "uniqswap", runtime.FullLoadAndCDC, settings, `
CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE, n int);
INSERT INTO accounts SELECT i, 'user' || i || '@example.com', i FROM generate_series(1, 5) i;
CREATE TABLE plain (id int PRIMARY KEY, v text, n int);
INSERT INTO plain SELECT i, 'v' || i, i FROM generate_series(1, 5) i;`)
		r := startCDC(t, p, tk, "accounts", "plain")

		execSQL(t, p.s, `BEGIN;
UPDATE accounts SET email = 'swap' WHERE id = 1;
UPDATE accounts SET email = 'user1@example.com', n = n + 10 WHERE id = 2;
UPDATE accounts SET email = 'user2@example.com' WHERE id = 1;
DELETE FROM accounts WHERE id = 3;
INSERT INTO accounts VALUES (6, 'user3@example.com', 6);
COMMIT`)
		execSQL(t, p.s, `BEGIN;
UPDATE plain SET n = n * 100 WHERE id <= 3;
UPDATE plain SET v = 'again' WHERE id = 1;
DELETE FROM plain WHERE id = 4;
INSERT INTO plain VALUES (4, 'back', 44), (7, 'new', 7);
DELETE FROM plain WHERE id = 5;
COMMIT`)

		p.waitEqual(r, 10*time.Second, "accounts", "plain")
		for table, want := range map[string]string{
			"accounts": "1:user2@example.com:1 2:user1@example.com:12 4:user4@example.com:4 5:user5@example.com:5 6:user3@example.com:6",
			"plain":    "1:again:100 2:v2:200 3:v3:300 4:back:44 7:new:7",
		} {
			for _, c := range []*pgx.Conn{p.s, p.d} {
				var cols string
				if table == "accounts" {
					cols = `id || ':' || email || ':' || n`
				} else {
					cols = `id || ':' || v || ':' || n`
				}
				got := queryString(t, c, `SELECT string_agg(`+cols+`, ' ' ORDER BY id) FROM `+table)
				if got != want {
					t.Errorf("rows of %s in %s: %q, want %q", table, c.Config().Database, got, want)
				}
			}
		}
		requireNoMisses(t, r, "accounts", "plain")

		// The same in transactions large enough for batch apply to stage
		// the rows (more than it writes one by one): the emails of 100 rows
		// rotate, and 100 rows of the other table are updated and 20
		// deleted and inserted again.
		execSQL(t, p.s, `INSERT INTO accounts SELECT i, 'big' || i, i FROM generate_series(100, 199) i;
INSERT INTO plain SELECT i, 'p' || i, i FROM generate_series(100, 199) i`)
		execSQL(t, p.s, `BEGIN;
UPDATE accounts SET email = 'tmp' || id WHERE id >= 100;
UPDATE accounts SET email = 'big' || (100 + (id - 99) % 100), n = n + 1 WHERE id >= 100;
COMMIT`)
		execSQL(t, p.s, `BEGIN;
UPDATE plain SET n = -n WHERE id >= 100;
DELETE FROM plain WHERE id >= 180;
INSERT INTO plain SELECT i, 'again' || i, i FROM generate_series(180, 199) i;
COMMIT`)
		p.waitEqual(r, 10*time.Second, "accounts", "plain")
		if got := queryString(t, p.d, `SELECT email FROM accounts WHERE id = 199`); got != "big100" {
			t.Errorf("accounts 199 has email %q on the target, want big100", got)
		}
		requireNoMisses(t, r, "accounts", "plain")
		testenv.RequireEqualTables(t, p.src, p.dst, "accounts", "plain")
	})
}

// TestCDCNoPrimaryKey replicates tables without a primary key: with the
// default replica identity only inserts (and a warning naming the table);
// with SetReplicaIdentityFull, updates and deletes too, row for row, also
// among identical duplicate rows.
func TestCDCNoPrimaryKey(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		p, tk := setup(t, "nopk_default", runtime.FullLoadAndCDC, "", `
CREATE TABLE nokey (a int, b text);
CREATE TABLE keyed (id int PRIMARY KEY);
INSERT INTO nokey VALUES (1, 'x'), (1, 'x');`)
		r := startCDC(t, p, tk, "nokey", "keyed")
		execSQL(t, p.s, `INSERT INTO nokey VALUES (2, 'y'), (2, 'y'), (NULL, NULL); INSERT INTO keyed VALUES (1)`)
		p.waitEqual(r, 10*time.Second, "nokey", "keyed")

		snap := r.Stats.Snapshot()
		if ts := tableStats(snap, "nokey"); ts == nil || len(ts.Warnings) == 0 || !strings.Contains(strings.Join(ts.Warnings, " "), "public.nokey") {
			t.Errorf("nokey has no key: want a warning naming public.nokey in its statistics, got %+v", ts)
		} else if ts.Inserts != 3 {
			t.Errorf("nokey: %d inserts counted, want 3", ts.Inserts)
		}
		if ts := tableStats(snap, "keyed"); ts == nil || len(ts.Warnings) != 0 {
			t.Errorf("keyed has a primary key: want no warning, got %+v", ts)
		}
		// Without SetReplicaIdentityFull the source table is left alone.
		if ri := queryString(t, p.s, `SELECT relreplident FROM pg_class WHERE oid = 'public.nokey'::regclass`); ri != "d" {
			t.Errorf("source nokey replica identity = %q, want d (unchanged)", ri)
		}
		testenv.RequireEqualTables(t, p.src, p.dst, "nokey", "keyed")
		// The table is published for inserts only, so the source may still
		// update and delete its rows.
		if _, err := p.s.Exec(context.Background(), `UPDATE nokey SET b = 'changed' WHERE a = 1; DELETE FROM nokey WHERE a = 2`); err != nil {
			t.Errorf("the source rejects updates of nokey since the replication started: %v", err)
		}
	})
	t.Run("SetReplicaIdentityFull", func(t *testing.T) {
		t.Parallel()
		p, tk := setup(t, "nopk_full", runtime.FullLoadAndCDC, `{"SluiceSettings":{"SetReplicaIdentityFull":true}}`, `
CREATE TABLE nokey (a int, b text, j json, f float8);
INSERT INTO nokey VALUES (1, 'x', '{"k": 1}', 0.1), (1, 'x', '{"k": 1}', 0.1), (2, 'y', '[]', 'NaN'), (3, NULL, NULL, NULL), (4, 'z', '{}', -0);`)
		r := startCDC(t, p, tk, "nokey")
		if ri := queryString(t, p.s, `SELECT relreplident FROM pg_class WHERE oid = 'public.nokey'::regclass`); ri != "f" {
			t.Errorf("source nokey replica identity = %q, want f (set by SetReplicaIdentityFull)", ri)
		}
		// One of two identical rows.
		execSQL(t, p.s, `DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 1)`)
		execSQL(t, p.s, `UPDATE nokey SET b = 'w' WHERE a = 3`)
		execSQL(t, p.s, `UPDATE nokey SET b = NULL, f = 1e-310 WHERE a = 2`)
		execSQL(t, p.s, `DELETE FROM nokey WHERE a = 4`)
		execSQL(t, p.s, `INSERT INTO nokey VALUES (5, 'v', '{"a":1,"a":2}', 1), (5, 'v', '{"a":1,"a":2}', 1); UPDATE nokey SET a = 6 WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 5)`)
		p.waitEqual(r, 10*time.Second, "nokey")
		want := "1|2|3|5|6"
		for _, c := range []*pgx.Conn{p.s, p.d} {
			if got := queryString(t, c, `SELECT string_agg(a::text, '|' ORDER BY a) FROM nokey`); got != want {
				t.Errorf("nokey keys in %s: %s, want %s", c.Config().Database, got, want)
			}
		}
		requireNoMisses(t, r, "nokey")
		testenv.RequireEqualTables(t, p.src, p.dst, "nokey")
	})
}

// TestCDCReplicaIdentityFullCharColumn updates and deletes rows of a keyless
// table under REPLICA IDENTITY FULL whose char(n) value is shorter than n.
// The source sends char values blank-padded; the target must still find the
// row.
func TestCDCReplicaIdentityFullCharColumn(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "ri_full_char", runtime.FullLoadAndCDC, `{"SluiceSettings":{"SetReplicaIdentityFull":true}}`, `
CREATE TABLE codes (code char(5), qty int);
INSERT INTO codes VALUES ('ab', 1), ('abcde', 2), ('cd', 3);`)
	r := startCDC(t, p, tk, "codes")
	execSQL(t, p.s, `UPDATE codes SET qty = 10 WHERE code = 'ab'`)
	execSQL(t, p.s, `UPDATE codes SET qty = 20 WHERE code = 'abcde'`)
	execSQL(t, p.s, `DELETE FROM codes WHERE code = 'cd'`)
	ok := p.wait(r, 5*time.Second, "codes")
	requireNoMisses(t, r, "codes")
	if !ok {
		p.requireEqual("after 5s", "codes")
	}
}

// TestCDCReplicaIdentityIndex replicates a table without a primary key whose
// replica identity is a unique index: updates (also of the index columns)
// and deletes find their rows by it.
func TestCDCReplicaIdentityIndex(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "ri_index", runtime.FullLoadAndCDC, settings, `
CREATE TABLE ri (id int, code text NOT NULL, v text);
CREATE UNIQUE INDEX ri_code ON ri (code);
ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_code;
INSERT INTO ri VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', 'z'), (NULL, 'd', NULL);`)
		r := startCDC(t, p, tk, "ri")
		execSQL(t, p.s, `UPDATE ri SET v = 'x2', id = 10 WHERE code = 'a'`)
		execSQL(t, p.s, `UPDATE ri SET code = 'b2' WHERE code = 'b'`)
		execSQL(t, p.s, `DELETE FROM ri WHERE code = 'c'`)
		execSQL(t, p.s, `INSERT INTO ri VALUES (5, 'e', 'new'); UPDATE ri SET v = 'newer' WHERE code = 'e'; UPDATE ri SET id = NULL, v = NULL WHERE code = 'd'`)
		p.waitEqual(r, 10*time.Second, "ri")
		requireNoMisses(t, r, "ri")
		if ts := tableStats(r.Stats.Snapshot(), "ri"); ts == nil || len(ts.Warnings) != 0 {
			t.Errorf("ri has a replica identity index: want no warning, got %+v", ts)
		}
		testenv.RequireEqualTables(t, p.src, p.dst, "ri")
	})
}

// TestCDCTruncate truncates a source table during CDC, also between inserts
// in one transaction: the target table ends with just the later rows, and
// other tables are untouched.
func TestCDCTruncate(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "truncate", runtime.FullLoadAndCDC, settings, `
CREATE TABLE tr (id int PRIMARY KEY, v text);
CREATE TABLE keep (id int PRIMARY KEY);
INSERT INTO tr SELECT i, 'v' FROM generate_series(1, 100) i;
INSERT INTO keep SELECT generate_series(1, 10);`)
		r := startCDC(t, p, tk, "tr", "keep")
		execSQL(t, p.s, `TRUNCATE tr`)
		p.waitEqual(r, 10*time.Second, "tr", "keep")
		if n := queryString(t, p.d, `SELECT count(*) FROM tr`); n != "0" {
			t.Errorf("target tr has %s rows after TRUNCATE, want 0", n)
		}
		execSQL(t, p.s, `INSERT INTO tr VALUES (1, 'before'), (500, 'before'); UPDATE tr SET v = 'updated' WHERE id = 1; TRUNCATE tr; INSERT INTO tr VALUES (1, 'after')`)
		p.waitEqual(r, 10*time.Second, "tr", "keep")
		if got := queryString(t, p.d, `SELECT string_agg(id || ':' || v, ',') FROM tr`); got != "1:after" {
			t.Errorf("target tr = %q, want 1:after", got)
		}
		if ts := tableStats(r.Stats.Snapshot(), "tr"); ts == nil || ts.DDLs != 2 {
			t.Errorf("tr: want 2 truncates counted, got %+v", ts)
		}
		testenv.RequireEqualTables(t, p.src, p.dst, "tr", "keep")
	})
}

// TestPGTargetTablePrepMode loads into a target that already has the table,
// with each FullLoadSettings.TargetTablePrepMode, and checks the rows, the
// target's own index and column, and the source's secondary indexes.
func TestPGTargetTablePrepMode(t *testing.T) {
	t.Parallel()
	const source = `
CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE INDEX items_v_idx ON items (v);
CREATE UNIQUE INDEX items_lower_v ON items (lower(v));
CREATE INDEX items_partial ON items (id DESC) WHERE v IS NOT NULL;
INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, NULL);`
	const existing = `
CREATE TABLE items (id int PRIMARY KEY, v text, note text);
CREATE INDEX items_extra_idx ON items (v, id);
INSERT INTO items VALUES (100, 'old1', 'n'), (101, 'old2', 'n');`
	for _, c := range []struct {
		mode      string
		rows      string // target rows after the load
		keepExtra bool   // the target's own index and column survive
	}{
		{runtime.PrepTruncateBeforeLoad, "1:a 2:b 3:", true},
		{runtime.PrepDoNothing, "1:a 2:b 3: 100:old1 101:old2", true},
		{runtime.PrepDropAndCreate, "1:a 2:b 3:", false},
	} {
		t.Run(c.mode, func(t *testing.T) {
			t.Parallel()
			p, tk := setup(t, "prep_"+strings.ToLower(c.mode[:4]), runtime.FullLoad,
				fmt.Sprintf(`{"FullLoadSettings":{"TargetTablePrepMode":%q}}`, c.mode), source)
			execSQL(t, p.d, existing)
			if _, err := runTask(t, tk, 20*time.Second); err != nil {
				t.Fatalf("full load: %v", err)
			}
			if got := queryString(t, p.d, `SELECT string_agg(id || ':' || coalesce(v, ''), ' ' ORDER BY id) FROM items`); got != c.rows {
				t.Errorf("target rows %q, want %q", got, c.rows)
			}
			extraIdx := queryString(t, p.d, `SELECT count(*) FROM pg_indexes WHERE tablename = 'items' AND indexname = 'items_extra_idx'`)
			extraCol := queryString(t, p.d, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'`)
			want := map[bool]string{true: "1", false: "0"}[c.keepExtra]
			if extraIdx != want || extraCol != want {
				t.Errorf("target's own index items_extra_idx: %s, column note: %s; want %s of each", extraIdx, extraCol, want)
			}
			// Every source index exists on the target with the same definition.
			rows, err := p.s.Query(context.Background(), `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Def string }])
			if err != nil {
				t.Fatal(err)
			}
			if len(defs) != 4 {
				t.Fatalf("source has %d indexes, want 4", len(defs))
			}
			for _, d := range defs {
				got := queryString(t, p.d, `SELECT coalesce((SELECT indexdef FROM pg_indexes WHERE tablename = 'items' AND indexname = $1), 'missing')`, d.Name)
				if got != d.Def {
					t.Errorf("target index %s: %q, want %q", d.Name, got, d.Def)
				}
			}
			if c.mode == runtime.PrepDropAndCreate {
				testenv.RequireEqualTables(t, p.src, p.dst, "items")
			}
		})
	}
}

// TestCDCStopRestart stops the replication gracefully while a writer keeps
// inserting rows with unique keys, and starts it again with the same task: it
// resumes from the stored position without a new full load, and the target
// ends with every row exactly once (log_nokey has no key, so a row applied
// twice would show).
func TestCDCStopRestart(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "restart", runtime.FullLoadAndCDC, settings, `
CREATE TABLE log_pk (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE log_nokey (id int, note text);
INSERT INTO log_pk (id) SELECT generate_series(1, 100);
INSERT INTO log_nokey SELECT generate_series(1, 100), 'seed';`)
		writer := testenv.Connect(t, p.src)
		var (
			wg      sync.WaitGroup
			stop    = make(chan struct{})
			written int
			werr    error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 101; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// One statement per row in its own transaction, and some
				// transactions with several rows.
				sql := fmt.Sprintf("INSERT INTO log_pk (id) VALUES (%d); INSERT INTO log_nokey VALUES (%d, 'w')", i, i)
				if _, werr = writer.Exec(context.Background(), sql); werr != nil {
					return
				}
				written = i
				time.Sleep(2 * time.Millisecond)
			}
		}()
		stopWriter := func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			wg.Wait()
		}
		defer stopWriter()

		r1 := testenv.Start(t, tk)
		waitPhase(t, r1, "cdc", 20*time.Second)
		time.Sleep(1500 * time.Millisecond)
		if err := r1.Stop(); err != nil {
			t.Fatalf("graceful stop: %v", err)
		}
		checkpoint := r1.Stats.Snapshot().Checkpoint
		if !strings.HasPrefix(checkpoint, "checkpoint:pg-lsn:") {
			t.Errorf("checkpoint after the stop = %q, want checkpoint:pg-lsn:...", checkpoint)
		}
		time.Sleep(700 * time.Millisecond) // changes made while stopped

		r2 := testenv.Start(t, tk)
		waitPhase(t, r2, "cdc", 20*time.Second)
		time.Sleep(1500 * time.Millisecond)
		stopWriter()
		if werr != nil {
			t.Fatalf("writer: %v", werr)
		}
		p.waitEqual(r2, 15*time.Second, "log_pk", "log_nokey")
		snap := r2.Stats.Snapshot()
		for _, name := range []string{"log_pk", "log_nokey"} {
			// The restarted run loads nothing, and counts on from the
			// counts committed with the position: every row once.
			ts := tableStats(snap, name)
			if ts == nil || !ts.FullLoadStartTime.IsZero() || ts.FullLoadRows+ts.Inserts != int64(written) || !snap.Cumulative {
				t.Errorf("%s after the restart: want no new full load, and full-load rows + inserts = the %d rows written, got %+v", name, written, ts)
			}
		}
		for _, c := range []*pgx.Conn{p.s, p.d} {
			got := queryString(t, c, `SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' distinct, max ' || max(id) FROM log_nokey`)
			if want := fmt.Sprintf("%d rows, %d distinct, max %d", written, written, written); got != want {
				t.Errorf("log_nokey in %s: %s, want %s", c.Config().Database, got, want)
			}
		}
		testenv.RequireEqualTables(t, p.src, p.dst, "log_pk", "log_nokey")
	})
}

// TestPGBadInput runs tasks that cannot work and requires errors that say
// why and what to do.
func TestPGBadInput(t *testing.T) {
	t.Parallel()
	const schema = `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);`
	mapping := func(table string) json.RawMessage {
		return json.RawMessage(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"one","object-locator":{"schema-name":"public","table-name":"` + table + `"},"rule-action":"include"}]}`)
	}

	t.Run("no table selected", func(t *testing.T) {
		t.Parallel()
		_, tk := setup(t, "bad_select", runtime.FullLoadAndCDC, "", schema)
		tk.TableMappings = mapping("Items") // names are case-sensitive
		_, err := runTask(t, tk, 15*time.Second)
		if !errors.Is(err, runtime.ErrNothingSelected) || !strings.Contains(fmt.Sprint(err), "the table mappings select no table") {
			t.Errorf("error = %v, want one saying the table mappings select no table", err)
		}
	})
	t.Run("malformed mappings", func(t *testing.T) {
		t.Parallel()
		_, tk := setup(t, "bad_json", runtime.FullLoadAndCDC, "", schema)
		for _, doc := range []string{`{"rules": [`, `"{\"rules\": 5}"`, `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"x","object-locator":{"schema-name":"public","table-name":"items"},"rule-action":"includ"}]}`} {
			tk.TableMappings = json.RawMessage(doc)
			_, err := runTask(t, tk, 15*time.Second)
			if !errors.Is(err, task.ErrInvalid) || !strings.Contains(fmt.Sprint(err), "TableMappings") {
				t.Errorf("mappings %s: error = %v, want an invalid-task error naming TableMappings", doc, err)
			}
		}
	})
	t.Run("no replication privilege", func(t *testing.T) {
		t.Parallel()
		role := strings.ReplaceAll(uniqueID("sluice-norepl"), "-", "_")
		createRole(t, role, "LOGIN")
		p, tk := setup(t, "bad_role", runtime.FullLoadAndCDC, "", schema)
		execSQL(t, p.s, `GRANT SELECT ON items TO `+role)
		tk.SourceEndpoint.Username = role
		_, err := runTask(t, tk, 15*time.Second)
		if !errors.Is(err, pgsource.ErrNoReplication) || !strings.Contains(fmt.Sprint(err), "REPLICATION") {
			t.Fatalf("error = %v, want one saying the role lacks REPLICATION", err)
		}
		// The fix the error gives works.
		runFix(t, p, err)
		if got := queryString(t, p.s, `SELECT rolreplication FROM pg_roles WHERE rolname = $1`, role); got != "true" {
			t.Errorf("after the fix, role %s has rolreplication %s", role, got)
		}
	})
	t.Run("no select privilege", func(t *testing.T) {
		t.Parallel()
		// A name that needs quoting in the fix.
		role := "Sluice NoSel " + uniqueID("x")
		createRole(t, role, "LOGIN REPLICATION")
		p, tk := setup(t, "bad_select_priv", runtime.FullLoadAndCDC, "", schema)
		tk.SourceEndpoint.Username = role
		_, err := runTask(t, tk, 15*time.Second)
		if !errors.Is(err, pgsource.ErrNoSelectAccess) || !strings.Contains(fmt.Sprint(err), "public.items") {
			t.Fatalf("error = %v, want one saying the role may not read public.items", err)
		}
		runFix(t, p, err)
		if got := queryString(t, p.s, `SELECT has_table_privilege($1, 'public.items', 'SELECT')`, role); got != "true" {
			t.Errorf("after the fix, role %q may still not read public.items", role)
		}
	})
}

// runFix runs, as the superuser on the source, the SQL that follows "Fix: " in
// an error message, and fails the test if the message has none or it fails.
func runFix(t *testing.T, p *dbPair, err error) {
	t.Helper()
	_, fix, ok := strings.Cut(err.Error(), "Fix: ")
	if !ok {
		t.Fatalf("error %q gives no fix", err)
	}
	if _, xerr := p.s.Exec(context.Background(), fix); xerr != nil {
		t.Errorf("the fix %q that the error gives fails: %v", fix, xerr)
	}
}

// createRole creates a cluster-wide role for one test and drops it after the
// test's databases are gone (cleanups run last-registered first).
func createRole(t *testing.T, role, options string) {
	t.Helper()
	admin := testenv.Connect(t, "postgres")
	q := pgx.Identifier{role}.Sanitize()
	execSQL(t, admin, "CREATE ROLE "+q+" "+options)
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+q); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
}

// slotName is the slot a task uses (task.Build's naming).
func slotName(id string) string {
	s := strings.ToLower(strings.ReplaceAll(id, "-", "_"))
	if len(s) > 50 {
		s = s[:50]
	}
	return "sluice_" + s
}

// TestCDCDroppedSlot drops the replication slot while the replication is
// stopped: the changes made meanwhile are gone from the source, so starting
// again must fail with an error that says the slot is gone and that the target
// needs a reload, instead of silently continuing without them.
func TestCDCDroppedSlot(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "dropped_slot", runtime.FullLoadAndCDC, "", `
CREATE TABLE t (id int PRIMARY KEY);
INSERT INTO t VALUES (1);`)
	r := startCDC(t, p, tk, "t")
	execSQL(t, p.s, `INSERT INTO t VALUES (2)`)
	p.waitEqual(r, 10*time.Second, "t")
	if err := r.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	slot := slotName(tk.ReplicationConfigIdentifier)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := p.s.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drop slot %s: %v", slot, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	execSQL(t, p.s, `INSERT INTO t VALUES (3)`) // lost with the slot

	_, err := runTask(t, tk, 5*time.Second)
	msg := fmt.Sprint(err)
	if !errors.Is(err, pgsource.ErrSlotMissing) || !strings.Contains(msg, "gone") || !strings.Contains(msg, "reload-target") {
		t.Errorf("restart after the slot was dropped: error = %v, want one saying the slot is gone and reload-target is needed; "+
			"target rows now %s, source rows %s (what the replication silently skipped is lost)",
			err, queryString(t, p.d, `SELECT string_agg(id::text, ',' ORDER BY id) FROM t`),
			queryString(t, p.s, `SELECT string_agg(id::text, ',' ORDER BY id) FROM t`))
	}
}

// TestCDCDeferrablePrimaryKey replicates a table whose primary key is
// DEFERRABLE. PostgreSQL cannot use a deferrable key as the replica identity,
// so such a table has none: the replication must neither break the source's
// updates (by publishing the table's updates) nor fail on its inserts.
func TestCDCDeferrablePrimaryKey(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "deferrable", runtime.FullLoadAndCDC, settings, `
CREATE TABLE d (id int PRIMARY KEY DEFERRABLE, v text);
INSERT INTO d SELECT i, 'v' || i FROM generate_series(1, 5) i;
UPDATE d SET v = 'updated' WHERE id = 5;`)
		r := startCDC(t, p, tk, "d")
		if _, err := p.s.Exec(context.Background(), `UPDATE d SET v = 'updated again' WHERE id = 5`); err != nil {
			t.Errorf("the source rejects UPDATEs of d since the replication started: %v", err)
		}
		execSQL(t, p.s, `INSERT INTO d VALUES (6, 'v6'), (7, 'v7')`)
		deadline := time.Now().Add(10 * time.Second)
		for queryString(t, p.d, `SELECT count(*) FROM d WHERE id IN (6, 7)`) != "2" {
			if err := r.Err(); err != nil {
				t.Fatalf("replication failed: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("inserted rows 6 and 7 not on the target after 10s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestCDCIdentityAlwaysColumn replicates inserts into a table with a
// GENERATED ALWAYS identity column that is not its primary key.
func TestCDCIdentityAlwaysColumn(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "ident_always", runtime.FullLoadAndCDC, settings, `
CREATE TABLE ia (id int PRIMARY KEY, seq int GENERATED ALWAYS AS IDENTITY, v text);
INSERT INTO ia (id, v) VALUES (1, 'a');`)
		r := startCDC(t, p, tk, "ia")
		execSQL(t, p.s, `INSERT INTO ia (id, v) VALUES (2, 'b'), (3, 'c'); UPDATE ia SET v = 'a2' WHERE id = 1`)
		p.waitEqual(r, 10*time.Second, "ia")
	})
}

// TestPGIdentitySequenceOptions loads a table whose identity column has its
// own START and INCREMENT: the target's next value must be the source's.
func TestPGIdentitySequenceOptions(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "ident_options", runtime.FullLoad, "", `
CREATE TABLE idn (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 10) PRIMARY KEY, v text);
CREATE TABLE ser (id serial PRIMARY KEY, v text);
ALTER SEQUENCE ser_id_seq INCREMENT BY 5;
INSERT INTO idn (v) VALUES ('a'), ('b'), ('c');
INSERT INTO ser (v) VALUES ('a'), ('b');`)
	if _, err := runTask(t, tk, 20*time.Second); err != nil {
		t.Fatalf("full load: %v", err)
	}
	testenv.RequireEqualTables(t, p.src, p.dst, "idn", "ser")
	for _, tc := range [][2]string{{"idn", "id"}, {"ser", "id"}} {
		q := `SELECT nextval(pg_get_serial_sequence($1, $2)) || ',' || nextval(pg_get_serial_sequence($1, $2))`
		s := queryString(t, p.s, q, tc[0], tc[1])
		d := queryString(t, p.d, q, tc[0], tc[1])
		if s != d {
			t.Errorf("next two values of %s.%s: source %s, target %s", tc[0], tc[1], s, d)
		}
	}
}

// TestCDCSourceSessionSettings replicates from a source database whose
// sessions default to DateStyle 'SQL, DMY' (day before month), IntervalStyle
// sql_standard and extra_float_digits 0 into a target with the defaults: the
// values must survive, through the text COPY of the full load (the enum
// column rules out binary; row 1) and through CDC (row 2).
func TestCDCSourceSessionSettings(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "session_settings", runtime.FullLoadAndCDC, "", `
CREATE TYPE color AS ENUM ('red', 'green');
CREATE TABLE ev (id int PRIMARY KEY, d date, ts timestamp, iv interval, f float8, c color);
INSERT INTO ev VALUES (1, '2020-01-02', '2020-01-02 03:04:05', '-1 day -02:03:04', 0.30000000000000004, 'red');`)
	db := pgx.Identifier{p.src}.Sanitize()
	execSQL(t, p.s, `ALTER DATABASE `+db+` SET DateStyle = 'SQL, DMY'; ALTER DATABASE `+db+` SET IntervalStyle = sql_standard; ALTER DATABASE `+db+` SET extra_float_digits = 0`)
	r := testenv.Start(t, tk)
	waitPhase(t, r, "cdc", 20*time.Second)
	w := testenv.Connect(t, p.src) // a new session, with the database's settings
	execSQL(t, w, `INSERT INTO ev VALUES (2, '2020-01-03', '2020-01-03 04:05:06', '-3 days -04:05:06', 1.0000000000000002, 'green')`)
	if got := queryString(t, w, `SELECT d::text || ' ' || iv::text || ' ' || f::text FROM ev WHERE id = 2`); got != "03/01/2020 -3 4:05:06 1" {
		t.Fatalf("source session settings not in effect: row 2 reads %q", got)
	}
	// Compare in fixed settings.
	for _, c := range []*pgx.Conn{p.s, p.d} {
		execSQL(t, c, `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 1`)
	}
	deadline := time.Now().Add(10 * time.Second)
	for queryString(t, p.d, `SELECT count(*) FROM ev`) != "2" {
		if err := r.Err(); err != nil {
			t.Fatalf("replication failed: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("row 2 not on the target after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, col := range []string{"d", "ts", "iv", "f", "c"} {
		p.compareColumn("ev", "id", col, "row 1 by the full load, row 2 by CDC")
	}
}

// TestCDCDomainNotNullDelete deletes rows, and moves a row to another key,
// in a table with a column of a NOT NULL domain.
func TestCDCDomainNotNullDelete(t *testing.T) {
	t.Parallel()
	applyModes(t, func(t *testing.T, settings string) {
		p, tk := setup(t, "domain_notnull", runtime.FullLoadAndCDC, settings, `
CREATE DOMAIN nnint AS int NOT NULL;
CREATE TABLE dn (id int PRIMARY KEY, x nnint);
INSERT INTO dn SELECT i, i * 10 FROM generate_series(1, 4) i;`)
		r := startCDC(t, p, tk, "dn")
		execSQL(t, p.s, `DELETE FROM dn WHERE id = 2`)
		execSQL(t, p.s, `UPDATE dn SET id = 30 WHERE id = 3`)
		execSQL(t, p.s, `INSERT INTO dn VALUES (5, 50)`)
		p.waitEqual(r, 10*time.Second, "dn")
		requireNoMisses(t, r, "dn")
	})
}

// TestCDCUnloggedTable replicates a schema that also holds an UNLOGGED table,
// which logical decoding cannot capture: the logged tables must still
// replicate.
func TestCDCUnloggedTable(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "unlogged", runtime.FullLoadAndCDC, "", `
CREATE TABLE logged (id int PRIMARY KEY);
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
INSERT INTO logged VALUES (1);
INSERT INTO scratch VALUES (1);`)
	r := testenv.Start(t, tk)
	waitPhase(t, r, "cdc", 20*time.Second)
	execSQL(t, p.s, `INSERT INTO logged VALUES (2)`)
	p.waitEqual(r, 10*time.Second, "logged")
}

// TestPGSequenceNotOwnedDefault loads a table whose key defaults to a
// sequence that no column owns (a sequence shared by tables).
func TestPGSequenceNotOwnedDefault(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "shared_seq", runtime.FullLoad, "", `
CREATE SEQUENCE shared_seq;
CREATE TABLE a (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'), v text);
CREATE TABLE b (id bigint PRIMARY KEY DEFAULT nextval('shared_seq'), v text);
INSERT INTO a (v) VALUES ('x'), ('y');
INSERT INTO b (v) VALUES ('z');`)
	if _, err := runTask(t, tk, 20*time.Second); err != nil {
		t.Fatalf("full load: %v", err)
	}
	testenv.RequireEqualTables(t, p.src, p.dst, "a", "b")
}

// TestPGRegclassColumn loads and streams columns of the reg* types, whose
// values name catalog objects (by OID inside the database).
func TestPGRegclassColumn(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "regclass", runtime.FullLoadAndCDC, "", `
CREATE TABLE refs (id int PRIMARY KEY, r regclass, ty regtype);
CREATE TABLE other (id int PRIMARY KEY);
INSERT INTO refs VALUES (1, 'public.other', 'int4'), (2, 'pg_class', 'text');`)
	r := testenv.Start(t, tk)
	waitPhase(t, r, "cdc", 20*time.Second)
	execSQL(t, p.s, `INSERT INTO refs VALUES (3, 'public.other', 'int8')`)
	if !p.wait(r, 5*time.Second, "refs") {
		p.compareColumn("refs", "id", "r", "row 1 and 2 by the full load, row 3 by CDC")
		p.requireEqual("after 5s", "refs")
	}
}

// TestPGUserMultirange loads a column of the multirange type that
// PostgreSQL creates with a user-defined range type.
func TestPGUserMultirange(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "multirange", runtime.FullLoad, "", `
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TABLE mr (id int PRIMARY KEY, m floatmultirange);
INSERT INTO mr VALUES (1, '{[1,2), [3,4]}'), (2, '{}');`)
	if _, err := runTask(t, tk, 20*time.Second); err != nil {
		t.Fatalf("full load: %v", err)
	}
	testenv.RequireEqualTables(t, p.src, p.dst, "mr")
}

// TestPGChunkedFullLoad loads a table in many page-range chunks at once
// (small ChunkPages) while a writer changes it, and requires the target to
// hold the snapshot's rows plus the streamed changes exactly once.
func TestPGChunkedFullLoad(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "chunked", runtime.FullLoadAndCDC,
		`{"FullLoadSettings":{"MaxFullLoadSubTasks":4},"SluiceSettings":{"ChunkPages":8}}`, `
CREATE TABLE big (id int PRIMARY KEY, v text);
CREATE TABLE big_nokey (id int, v text);
INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 20000) i;
INSERT INTO big_nokey SELECT i, repeat('y', 100) FROM generate_series(1, 20000) i;
ANALYZE big; ANALYZE big_nokey;`)
	pages := queryString(t, p.s, `SELECT pg_relation_size('big') / 8192`)
	writer := testenv.Connect(t, p.src)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			// Moves rows to new pages (non-HOT: the key's index changes).
			sql := fmt.Sprintf("UPDATE big SET id = id + 100000 WHERE id = %d; INSERT INTO big_nokey VALUES (%d, 'new')", i*97+1, 100000+i)
			if _, err := writer.Exec(context.Background(), sql); err != nil {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- nil
	}()
	r := testenv.Start(t, tk)
	waitPhase(t, r, "cdc", 20*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	p.waitEqual(r, 15*time.Second, "big", "big_nokey")
	ts := tableStats(r.Stats.Snapshot(), "big")
	if ts == nil || ts.FullLoadRows != 20000 {
		t.Errorf("big (%s pages, in chunks of 8): full load rows %+v, want 20000", pages, ts)
	}
	testenv.RequireEqualTables(t, p.src, p.dst, "big", "big_nokey")
}

// TestCDCKeyIndexWithoutSecondaryIndexes turns secondary indexes off: the
// unique index that identifies rows must still be built (inserts upsert on
// it), and a plain index must not.
func TestCDCKeyIndexWithoutSecondaryIndexes(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "ri_noidx", runtime.FullLoadAndCDC, `{"SluiceSettings":{"CreateSecondaryIndexes":false}}`, `
CREATE TABLE ri (id int, code text NOT NULL, v text);
CREATE UNIQUE INDEX ri_code ON ri (code);
CREATE INDEX ri_v ON ri (v);
ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_code;
INSERT INTO ri VALUES (1, 'a', 'x'), (2, 'b', 'y');`)
	r := startCDC(t, p, tk, "ri")
	execSQL(t, p.s, `INSERT INTO ri VALUES (3, 'c', 'z'); UPDATE ri SET v = 'x2' WHERE code = 'a'; DELETE FROM ri WHERE code = 'b'`)
	p.waitEqual(r, 10*time.Second, "ri")
	requireNoMisses(t, r, "ri")
	if got := queryString(t, p.d, `SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'ri'`); got != "ri_code" {
		t.Errorf("target indexes on ri = %q, want just the key index ri_code", got)
	}
}

// TestCDCBatchLargeTransaction applies, in batch mode with a 1 MB memory
// limit, source transactions far larger than the limit (so the held net
// changes are written out mid-transaction), mixing key moves, deletes,
// re-inserts and updates of rows held before a write-out.
func TestCDCBatchLargeTransaction(t *testing.T) {
	t.Parallel()
	p, tk := setup(t, "batch_large", runtime.FullLoadAndCDC,
		`{"TargetMetadata":{"BatchApplyEnabled":true},"ChangeProcessingTuning":{"BatchApplyMemoryLimit":1}}`, `
CREATE TABLE big (id int PRIMARY KEY, n int, pad text);
INSERT INTO big SELECT i, 0, repeat('x', 100) FROM generate_series(1, 50000) i;`)
	r := startCDC(t, p, tk, "big")
	execSQL(t, p.s, `BEGIN;
UPDATE big SET n = n + 1, pad = repeat('y', 100);
UPDATE big SET id = id + 100000 WHERE id % 10 = 0;
DELETE FROM big WHERE id % 7 = 0;
INSERT INTO big SELECT i, -1, 'again' FROM generate_series(1, 50000, 7) i ON CONFLICT DO NOTHING;
UPDATE big SET n = n + 1 WHERE id % 3 = 0;
COMMIT`)
	p.waitEqual(r, 60*time.Second, "big")
	requireNoMisses(t, r, "big")
}
