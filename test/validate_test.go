package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/test/testenv"
)

// validationSettings turns validation on with small ranges, so a few
// thousand rows make many of them.
const validationSettings = `{"ValidationSettings":{"EnableValidation":true,"PartitionSize":500,"ThreadCount":2,"ValidationQueryCdcDelaySeconds":1}}`

// waitValidation waits until every named table's validation satisfies ok
// and returns their statistics, failing the test after timeout.
func waitValidation(t *testing.T, r *testenv.Running, timeout time.Duration, what string, ok func(runtime.ValidationStats) bool, tables ...string) map[string]runtime.ValidationStats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := r.Err(); err != nil {
			t.Fatalf("replication failed: %v", err)
		}
		got := map[string]runtime.ValidationStats{}
		for _, ts := range r.Stats.Snapshot().Tables {
			got[ts.SchemaName+"."+ts.TableName] = ts.Validation
		}
		all := true
		for _, name := range tables {
			if v, found := got[name]; !found || !ok(v) {
				all = false
			}
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("validation not %s after %s (stream reached %v): %+v", what, timeout, r.Stats.Reached(), got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func validated(v runtime.ValidationStats) bool {
	return v.State == runtime.ValidationValidated && v.Pending == 0
}

// failure is a row of awsdms_validation_failures_v1, as a test compares it.
type failure struct{ table, key, typ string }

func pgFailures(t *testing.T, db, taskName string) []failure {
	t.Helper()
	rows, err := testenv.Connect(t, db).Query(context.Background(),
		`SELECT "TABLE_OWNER" || '.' || "TABLE_NAME", "KEY", "FAILURE_TYPE" FROM public.awsdms_validation_failures_v1 WHERE "TASK_NAME" = $1`, taskName)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (failure, error) {
		var f failure
		return f, r.Scan(&f.table, &f.key, &f.typ)
	})
	if err != nil {
		t.Fatal(err)
	}
	sortFailures(out)
	return out
}

func sortFailures(fs []failure) {
	sort.Slice(fs, func(i, j int) bool { return fmt.Sprint(fs[i]) < fmt.Sprint(fs[j]) })
}

func key(vals ...string) string {
	b, _ := json.Marshal(map[string][]string{"key": vals})
	return string(b)
}

// TestValidatePostgres: PostgreSQL → PostgreSQL under a concurrent writer,
// validation reports every table Validated with no failure while the
// writes go on (rows changing between the two snapshots are compared again,
// not reported). Then, with the replicator stopped, the target is changed
// behind its back — one row changed, one deleted, one inserted, one column
// of a large row changed — and a validation after the restart names
// exactly those keys, with their failure types, in the statistics and in
// awsdms_validation_failures_v1, having fetched only the rows around them
// (the differing ranges are split until they are small).
func TestValidatePostgres(t *testing.T) {
	src := testenv.NewPGDatabase(t, "valsrc")
	dst := testenv.NewPGDatabase(t, "valdst")
	testenv.Exec(t, src, `CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, seen timestamptz, tags text[], score float8, note text)`)
	testenv.Exec(t, src, `INSERT INTO accounts SELECT g, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 minute', ARRAY['a', g::text], g / 7.0, repeat('x', CASE WHEN g = 4000 THEN 200000 ELSE 10 END) FROM generate_series(1, 6000) g`)
	testenv.Exec(t, src, `CREATE TABLE names (name text PRIMARY KEY, n int)`)
	testenv.Exec(t, src, `INSERT INTO names SELECT 'n' || g, g FROM generate_series(1, 1500) g`)
	testenv.Exec(t, src, `CREATE TABLE events (kind text, at int)`) // no key
	testenv.Exec(t, src, `INSERT INTO events SELECT 'k' || (g % 10), g % 50 FROM generate_series(1, 2000) g`)
	testenv.Exec(t, src, `ALTER TABLE events REPLICA IDENTITY FULL`)
	tk := testenv.PGTask(t, "validate-pg", runtime.FullLoadAndCDC, src, dst)
	tk.ReplicationSettings = json.RawMessage(validationSettings)
	tables := []string{"public.accounts", "public.names", "public.events"}

	r := testenv.Start(t, tk)
	stop := testenv.StartWriter(t, src, func(ctx context.Context, conn *pgx.Conn, i int) error {
		_, err := conn.Exec(ctx, `UPDATE accounts SET balance = balance + 1, score = random() WHERE id = $1`, 1+(i*37)%6000)
		if err == nil && i%5 == 0 {
			_, err = conn.Exec(ctx, `INSERT INTO names VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET n = EXCLUDED.n + 1`, fmt.Sprintf("w%d", i%300), i)
		}
		if err == nil && i%7 == 0 {
			_, err = conn.Exec(ctx, `INSERT INTO events VALUES ('live', $1)`, i)
		}
		return err
	})
	waitValidation(t, r, 2*time.Minute, "validated", func(v runtime.ValidationStats) bool {
		return v.State == runtime.ValidationValidated || v.State == runtime.ValidationPending && v.ComparedRows > 0
	}, tables...)
	// A few rounds of continuous validation while the writes go on.
	time.Sleep(4 * time.Second)
	stop()
	got := waitValidation(t, r, time.Minute, "validated", validated, tables...)
	for name, v := range got {
		if v.Failed != 0 || v.Suspended != 0 {
			t.Errorf("%s: %d failed and %d suspended rows under live writes, want none: %+v", name, v.Failed, v.Suspended, v)
		}
	}
	if !strings.Contains(got["public.events"].Details, "multiset") {
		t.Errorf("the keyless table's details do not say how it was compared: %q", got["public.events"].Details)
	}
	testenv.WaitEqual(t, nil, src, dst, time.Minute, "accounts", "names", "events")
	if fs := pgFailures(t, dst, tk.ReplicationConfigIdentifier); len(fs) != 0 {
		t.Fatalf("failures recorded under live writes: %v", fs)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}

	// Behind the replicator's back.
	testenv.Exec(t, dst, `UPDATE accounts SET balance = 0 WHERE id = 17`)
	testenv.Exec(t, dst, `DELETE FROM accounts WHERE id = 2500`)
	testenv.Exec(t, dst, `INSERT INTO accounts (id, balance) VALUES (9000, 1)`)
	testenv.Exec(t, dst, `UPDATE accounts SET note = note || 'y' WHERE id = 4000`)
	testenv.Exec(t, dst, `UPDATE names SET n = -1 WHERE name = 'n700'`)
	testenv.Exec(t, dst, `DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE kind = 'k3' LIMIT 1)`)

	again := *tk
	again.ValidateTables = []string{"public.accounts"}
	r = testenv.Start(t, &again)
	got = waitValidation(t, r, 2*time.Minute, "settled", func(v runtime.ValidationStats) bool {
		return v.State == runtime.ValidationMismatched && v.Pending == 0
	}, tables...)
	if v := got["public.accounts"]; v.Failed != 4 {
		t.Errorf("accounts: %d failed rows, want 4: %+v", v.Failed, v)
	}
	// 6,000 rows in ranges of 500: without splitting, every differing
	// range would be fetched whole from both sides (over 4,000 rows).
	if v := got["public.accounts"]; v.RowsFetched > 1200 {
		t.Errorf("accounts: %d rows fetched to find 4 differing ones; the differing ranges were not split", v.RowsFetched)
	}
	want := []failure{
		{"public.accounts", key("17"), runtime.RecordDiff},
		{"public.accounts", key("2500"), runtime.MissingTarget},
		{"public.accounts", key("4000"), runtime.RecordDiff},
		{"public.accounts", key("9000"), runtime.MissingSource},
		{"public.names", key("n700"), runtime.RecordDiff},
	}
	fs := pgFailures(t, dst, tk.ReplicationConfigIdentifier)
	var keyed []failure
	var keyless int
	for _, f := range fs {
		if f.table == "public.events" {
			keyless++
			if f.typ != runtime.MissingTarget {
				t.Errorf("keyless table failure %+v, want MISSING_TARGET", f)
			}
			continue
		}
		keyed = append(keyed, f)
	}
	sortFailures(want)
	if fmt.Sprint(keyed) != fmt.Sprint(want) || keyless != 1 {
		t.Fatalf("failures recorded:\n%v\nwant:\n%v and one MISSING_TARGET of public.events", fs, want)
	}
}
