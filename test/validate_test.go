package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
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
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	repairAndCheck(t, again, []string{"public.accounts", "public.names"}, 5, func() {
		testenv.WaitEqual(t, nil, src, dst, time.Minute, "accounts", "names")
	}, func() []string { return pgDetails(t, dst, tk.ReplicationConfigIdentifier) })
}

// pgDetails lists the DETAILS of a task's failures.
func pgDetails(t *testing.T, db, taskName string) []string {
	rows, err := testenv.Connect(t, db).Query(context.Background(), `SELECT "DETAILS" FROM public.awsdms_validation_failures_v1 WHERE "TASK_NAME" = $1`, taskName)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// repairAndCheck starts tk again with RepairValidationFailures, validating
// tables first, and checks that they end Validated with n rows repaired,
// recorded as such, and that equal (an independent comparison) says so.
func repairAndCheck(t *testing.T, tk task.Task, tables []string, n int, equal func(), details func() []string) {
	t.Helper()
	tk.ReplicationSettings = json.RawMessage(strings.Replace(string(tk.ReplicationSettings), `"ValidationSettings"`, `"SluiceSettings":{"RepairValidationFailures":true},"ValidationSettings"`, 1))
	tk.ValidateTables = tables
	r := testenv.Start(t, &tk)
	got := waitValidation(t, r, 2*time.Minute, "repaired", func(v runtime.ValidationStats) bool {
		return v.State == runtime.ValidationValidated && v.Pending == 0 && strings.Contains(v.Details, "repaired")
	}, tables...)
	equal()
	repaired := 0
	for _, d := range details() {
		if strings.Contains(d, `"repaired":true`) {
			repaired++
		}
	}
	if repaired != n {
		t.Errorf("%d failures recorded as repaired, want %d; statistics %+v", repaired, n, got)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateMariaDB: MariaDB → PostgreSQL and MariaDB → MariaDB, with
// every MariaDB type the replicator carries, under a concurrent writer:
// validation reports Validated with no failure (equal values print alike
// through the type map: a decimal and its numeric, a datetime and its
// timestamp, a float and its real, a set and its text, a time and its
// interval). Then, with the replicator stopped, rows changed, deleted and
// inserted on the target are named exactly.
func TestValidateMariaDB(t *testing.T) {
	for _, target := range []string{"postgres", "mariadb"} {
		t.Run(target, func(t *testing.T) { testValidateMariaDB(t, target) })
	}
}

func testValidateMariaDB(t *testing.T, target string) {
	my := testenv.NewMySQLDatabase(t, "valmy")
	testenv.MySQLExec(t, my, `CREATE TABLE items (
		id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) NOT NULL, price decimal(12,2), qty int unsigned,
		big bigint unsigned, small tinyint, created datetime(6), ts timestamp(6) NULL, day date, flags bit(5),
		kind enum('new','paid','it''s shipped'), tags set('x','y','z'), data mediumblob, bin binary(4), note mediumtext, t time(3), y year,
		f float, d double, doc json)`)
	testenv.MySQLExec(t, my, `INSERT INTO items (name, price, qty, big, small, created, ts, day, flags, kind, tags, data, bin, note, t, y, f, d, doc)
		SELECT CONCAT('item ', seq, ' ✓ 😀'), seq * 1.25, 4294967295 - seq, 18446744073709551615 - CAST(seq AS UNSIGNED), CAST(seq % 256 AS SIGNED) - 128,
		       '2024-02-29 23:59:59.123456' + INTERVAL seq SECOND, '2024-06-01 12:00:00.5' + INTERVAL seq MINUTE, '1999-12-31' + INTERVAL seq DAY,
		       seq % 32, ELT(seq % 3 + 1, 'new', 'paid', 'it''s shipped'), ELT(seq % 4 + 1, '', 'x', 'x,z', 'x,y,z'),
		       UNHEX(CONCAT('00ff', LPAD(HEX(seq), 8, '0'))), UNHEX(LPAD(HEX(seq % 256), 8, '0')), IF(seq % 10 = 0, NULL, CONCAT('tab\t nl\n q'' back\\ ', seq)),
		       IF(seq % 2 = 0, '-838:59:59', '100:00:01.25'), 1901 + seq % 254, seq / 3, seq / 7, CONCAT('{"n": ', seq, ', "a": [1.5, "x"]}')
		FROM seq_1_to_3000`)
	// A large row: the column changed on it later is a small one.
	testenv.MySQLExec(t, my, `UPDATE items SET note = REPEAT('z', 300000), data = REPEAT(X'AB', 200000) WHERE id = 1200`)
	testenv.MySQLExec(t, my, `CREATE TABLE words (w varchar(20) PRIMARY KEY, n int) COLLATE utf8mb4_general_ci`)
	testenv.MySQLExec(t, my, `INSERT INTO words SELECT CONCAT(ELT(seq % 4 + 1, 'a', 'B', 'é', 'Z'), seq), seq FROM seq_1_to_1200`)
	testenv.MySQLExec(t, my, `CREATE TABLE nokey (a int, b varchar(10))`)
	testenv.MySQLExec(t, my, `INSERT INTO nokey SELECT seq % 40, CONCAT('b', seq % 7) FROM seq_1_to_700`)

	tk := &task.Task{
		ReplicationConfigIdentifier: "validate-my-" + target, ReplicationType: runtime.FullLoadAndCDC,
		SourceEndpoint: testenv.MySQLEndpoint(), TableMappings: testenv.IncludeAll(my),
	}
	settings := validationSettings
	var dst string
	// run runs SQL on the target, naming the target's tables by {t}.
	var run func(sql string)
	var failures func() []failure
	var details func() []string
	switch target {
	case "postgres":
		dst = testenv.NewPGDatabase(t, "valmy_dst")
		tk.TargetEndpoint = testenv.PGEndpoint(dst)
		run = func(sql string) { testenv.Exec(t, dst, strings.ReplaceAll(sql, "{t}", my+".")) }
		failures = func() []failure { return pgFailures(t, dst, tk.ReplicationConfigIdentifier) }
		details = func() []string { return pgDetails(t, dst, tk.ReplicationConfigIdentifier) }
	default:
		dst = my + "_dst"
		t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+dst) })
		tk.TargetEndpoint = testenv.MySQLEndpoint()
		tk.TableMappings = renameSchema(my, dst)
		settings = strings.Replace(settings, `{"ValidationSettings"`, `{"ControlTablesSettings":{"ControlSchema":"`+dst+`"},"ValidationSettings"`, 1)
		run = func(sql string) { testenv.MySQLExec(t, dst, strings.ReplaceAll(sql, "{t}", "")) }
		failures = func() []failure {
			r := testenv.MySQLExec(t, dst, "SELECT CONCAT(TABLE_OWNER, '.', TABLE_NAME), `KEY`, FAILURE_TYPE FROM awsdms_validation_failures_v1 WHERE TASK_NAME = ?", tk.ReplicationConfigIdentifier)
			var out []failure
			for i := range r.RowNumber() {
				a, _ := r.GetString(i, 0)
				b, _ := r.GetString(i, 1)
				c, _ := r.GetString(i, 2)
				out = append(out, failure{a, b, c})
			}
			sortFailures(out)
			return out
		}
		details = func() []string {
			r := testenv.MySQLExec(t, dst, "SELECT DETAILS FROM awsdms_validation_failures_v1 WHERE TASK_NAME = ?", tk.ReplicationConfigIdentifier)
			var out []string
			for i := range r.RowNumber() {
				d, _ := r.GetString(i, 0)
				out = append(out, d)
			}
			return out
		}
	}
	tk.ReplicationSettings = json.RawMessage(settings)
	tables := []string{my + ".items", my + ".words", my + ".nokey"}

	r := testenv.Start(t, tk)
	done := make(chan struct{})
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		conn := testenv.MySQLConnect(t, my)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			for _, q := range []string{
				fmt.Sprintf(`UPDATE items SET price = price + 1, d = RAND(), ts = NOW(6), t = '12:00:00.5', doc = '{"i": %d}' WHERE id = %d`, i, 1+(i*37)%3000),
				fmt.Sprintf(`INSERT INTO words VALUES ('w%d', %d) ON DUPLICATE KEY UPDATE n = n + 1`, i%200, i),
				fmt.Sprintf(`INSERT INTO nokey VALUES (%d, 'live')`, i%40),
			} {
				if _, err := conn.Execute(q); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}
	}()
	waitValidation(t, r, 2*time.Minute, "validated", func(v runtime.ValidationStats) bool { return v.ComparedRows > 0 && v.State != runtime.ValidationError }, tables...)
	time.Sleep(4 * time.Second)
	close(done)
	<-writer
	got := waitValidation(t, r, time.Minute, "validated", validated, tables...)
	for name, v := range got {
		if v.Failed != 0 || v.Suspended != 0 {
			t.Errorf("%s: %d failed and %d suspended rows under live writes, want none: %+v", name, v.Failed, v.Suspended, v)
		}
	}
	if fs := failures(); len(fs) != 0 {
		t.Fatalf("failures recorded under live writes: %v", fs)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}

	run(`UPDATE {t}items SET price = 0 WHERE id = 17`)
	run(`DELETE FROM {t}items WHERE id = 2500`)
	run(`INSERT INTO {t}items (id, name) VALUES (9000, 'only here')`)
	// A float that differs in its last digits: compared through the type
	// map, not as text.
	run(`UPDATE {t}items SET f = f * 1.000001 WHERE id = 1200`)
	run(`UPDATE {t}words SET n = -1 WHERE w = 'é2'`)

	again := *tk
	again.ValidateTables = []string{my + ".items"}
	r = testenv.Start(t, &again)
	got = waitValidation(t, r, 2*time.Minute, "settled", func(v runtime.ValidationStats) bool {
		return v.Pending == 0 && v.ComparedRows > 0 && v.State != runtime.ValidationPending
	}, tables...)
	want := []failure{
		{my + ".items", key("1200"), runtime.RecordDiff},
		{my + ".items", key("17"), runtime.RecordDiff},
		{my + ".items", key("2500"), runtime.MissingTarget},
		{my + ".items", key("9000"), runtime.MissingSource},
		{my + ".words", key("é2"), runtime.RecordDiff},
	}
	sortFailures(want)
	if fs := failures(); fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Fatalf("failures recorded:\n%v\nwant:\n%v\nstatistics: %+v", fs, want, got)
	}
	if v := got[my+".nokey"]; v.State != runtime.ValidationValidated {
		t.Errorf("nokey: %+v, want Validated", v)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	repairAndCheck(t, again, []string{my + ".items", my + ".words"}, 5, func() {
		if target == "mariadb" {
			exprs := []string{"CAST(id AS CHAR)", "name", "CAST(price AS CHAR)", "CAST(CAST(f AS DOUBLE) AS CHAR)", "HEX(data)", "HEX(bin)", "CAST(t AS CHAR)", "doc", "DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f')"}
			waitRows(t, r0{}, "items", time.Minute, func() []string { return mysqlRows(t, my, "items", exprs) }, func() []string { return mysqlRows(t, dst, "items", exprs) })
			w := []string{"w", "CAST(n AS CHAR)"}
			waitRows(t, r0{}, "words", time.Minute, func() []string { return mysqlRows(t, my, "words", w) }, func() []string { return mysqlRows(t, dst, "words", w) })
			return
		}
		waitMyEqual(t, r0{}, my, dst, time.Minute, map[string][]myCol{
			"items": {{"CAST(id AS CHAR)", "id::text"}, {"name", "name"}, {"CAST(price AS CHAR)", "price::text"},
				// d is left out: the two engines print some doubles in
				// different notations (0.0000635 and 6.35e-05).
				{"CAST(CAST(f AS DOUBLE) AS CHAR)", "f::float8::text"},
				{"DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f')", "to_char(created, 'YYYY-MM-DD HH24:MI:SS.US')"},
				{"LOWER(HEX(data))", "encode(data, 'hex')"}},
			"words": {{"w", "w"}, {"CAST(n AS CHAR)", "n::text"}},
		})
	}, details)
}

// r0 is a replication that never ends, for the row comparisons after one
// has stopped.
type r0 struct{}

func (r0) Err() error { return nil }

// TestAPIValidation drives validation through the DMS API with the AWS
// SDK: a ValidationSettings member Sluice does not honour is refused by
// name, a replication with EnableValidation reports its table Validated in
// DescribeReplicationTableStatistics, and after the target is changed
// behind its back, ReloadReplicationTables validate-only reports the
// changed rows as Mismatched records, in the statistics and in
// awsdms_validation_failures_v1, leaving the table as it is.
func TestAPIValidation(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apival", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, note text)`)
	testenv.Exec(t, f.src, `INSERT INTO accounts SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 3000) g`)
	modify := func(settings string) error {
		_, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn), ReplicationSettings: aws.String(settings)})
		return err
	}
	err := modify(`{"ValidationSettings":{"EnableValidation":true,"ValidationPartialLobSize":0}}`)
	requireFault(t, err, "InvalidParameterValueException")
	if !strings.Contains(err.Error(), "ValidationPartialLobSize") {
		t.Errorf("the refusal does not name the member: %v", err)
	}
	requireFault(t, modify(`{"ValidationSettings":{"ValidationOnly":true}}`), "InvalidParameterValueException")
	if err := modify(`{"ValidationSettings":{"EnableValidation":true,"PartitionSize":400,"ThreadCount":2}}`); err != nil {
		t.Fatalf("ModifyReplicationConfig: %v", err)
	}
	validateOnly := func(table string) error {
		_, err := c.ReloadReplicationTables(ctx, &dms.ReloadReplicationTablesInput{
			ReplicationConfigArn: aws.String(f.configArn), ReloadOption: types.ReloadOptionValueValidateOnly,
			TablesToReload: []types.TableToReload{{SchemaName: aws.String("public"), TableName: aws.String(table)}},
		})
		return err
	}
	requireFault(t, validateOnly("accounts"), "InvalidResourceStateFault")

	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	waitStats := func(what string, ok func(types.TableStatistics) bool) types.TableStatistics {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ts := apiTableStats(t, c, f.configArn, "accounts")
			if ok(ts) {
				return ts
			}
			if time.Now().After(deadline) {
				t.Fatalf("accounts not %s: ValidationState %q, failed %d, pending %d, details %q", what,
					aws.ToString(ts.ValidationState), ts.ValidationFailedRecords, ts.ValidationPendingRecords, aws.ToString(ts.ValidationStateDetails))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitStats("Validated", func(ts types.TableStatistics) bool { return aws.ToString(ts.ValidationState) == "Validated" })

	testenv.Exec(t, f.dst, `UPDATE accounts SET balance = -1 WHERE id = 10`)
	testenv.Exec(t, f.dst, `DELETE FROM accounts WHERE id = 2999`)
	requireFault(t, validateOnly("no_such_table"), "InvalidParameterValueException")
	if err := validateOnly("accounts"); err != nil {
		t.Fatalf("ReloadReplicationTables validate-only: %v", err)
	}
	ts := waitStats("Mismatched records", func(ts types.TableStatistics) bool {
		return aws.ToString(ts.ValidationState) == "Mismatched records" && ts.ValidationPendingRecords == 0
	})
	if ts.ValidationFailedRecords != 2 {
		t.Errorf("ValidationFailedRecords = %d, want 2", ts.ValidationFailedRecords)
	}
	want := []failure{{"public.accounts", key("10"), runtime.RecordDiff}, {"public.accounts", key("2999"), runtime.MissingTarget}}
	sortFailures(want)
	if fs := pgFailures(t, f.dst, f.configID); fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Errorf("awsdms_validation_failures_v1 holds %v, want %v", fs, want)
	}
	out, err := runWatch(t, s, "-until", "running", f.configID)
	if err != nil || !strings.Contains(out, "validation Mismatched records: 2 failed, 0 pending, 0 suspended") {
		t.Errorf("sluice watch does not show the table's validation (%v):\n%s", err, out)
	}
	// Validation writes nothing to the tables it compares.
	var n int
	if err := testenv.Connect(t, f.dst).QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil || n != 2999 {
		t.Errorf("target rows after validate-only: %d (%v), want 2999", n, err)
	}
}

// TestValidationOnly: a full-load replication with ValidationOnly compares
// tables that another copy made and writes nothing to them: an exact copy
// is Validated, and rows changed, deleted and inserted on it are named,
// found by splitting the key ranges of one summed scan.
func TestValidationOnly(t *testing.T) {
	src := testenv.NewPGDatabase(t, "vosrc")
	dst := testenv.NewPGDatabase(t, "vodst")
	for _, db := range []string{src, dst} {
		testenv.Exec(t, db, `CREATE TABLE big (id bigint PRIMARY KEY, v int, note char(10))`)
		testenv.Exec(t, db, `INSERT INTO big SELECT g, g % 97, 'x' FROM generate_series(1, 50000) g`)
		testenv.Exec(t, db, `CREATE TABLE words (w text PRIMARY KEY, n numeric)`)
		testenv.Exec(t, db, `INSERT INTO words SELECT 'w' || g, g / 3.0 FROM generate_series(1, 3000) g`)
	}
	run := func(id string) map[string]runtime.ValidationStats {
		tk := testenv.PGTask(t, id, runtime.FullLoad, src, dst)
		tk.ReplicationSettings = json.RawMessage(`{"ValidationSettings":{"ValidationOnly":true,"PartitionSize":1000,"ThreadCount":2}}`)
		stats := runtime.NewStats()
		if err := task.Run(context.Background(), tk, stats, nil); err != nil {
			t.Fatalf("ValidationOnly: %v", err)
		}
		out := map[string]runtime.ValidationStats{}
		for _, ts := range stats.Snapshot().Tables {
			out[ts.TableName] = ts.Validation
		}
		return out
	}
	got := run("vo-equal")
	for name, v := range got {
		if v.State != runtime.ValidationValidated || v.Failed != 0 {
			t.Errorf("%s of an exact copy: %+v", name, v)
		}
	}
	testenv.Exec(t, dst, `UPDATE big SET v = -1 WHERE id = 31337`)
	testenv.Exec(t, dst, `DELETE FROM big WHERE id = 2`)
	testenv.Exec(t, dst, `INSERT INTO big VALUES (60000, 1, 'y')`)
	testenv.Exec(t, dst, `UPDATE words SET n = n + 0.000001 WHERE w = 'w77'`)
	got = run("vo-changed")
	if v := got["big"]; v.State != runtime.ValidationMismatched || v.Failed != 3 || v.RowsFetched > 400 {
		t.Errorf("big: %+v, want 3 failed rows found with few rows fetched", v)
	}
	if v := got["words"]; v.Failed != 1 {
		t.Errorf("words: %+v, want 1 failed row", v)
	}
	want := []failure{{"public.big", key("2"), runtime.MissingTarget}, {"public.big", key("31337"), runtime.RecordDiff},
		{"public.big", key("60000"), runtime.MissingSource}, {"public.words", key("w77"), runtime.RecordDiff}}
	sortFailures(want)
	if fs := pgFailures(t, dst, "vo-changed"); fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Errorf("failures %v, want %v", fs, want)
	}
	var n int
	if err := testenv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM big`).Scan(&n); err != nil || n != 50000 {
		t.Errorf("ValidationOnly changed the target: %d rows (%v)", n, err)
	}
}
