package test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtarget"
	"github.com/sluicedb/sluice/runtime/task"
	"github.com/sluicedb/sluice/test/testenv"
)

// policyDBs is a source and target pair of one engine, and what the error
// policy tests do to them: tables items and other on the source; a CHECK
// (v <> 'bad') and a trigger refusing to delete rows whose v is 'keep' on
// the target, that the source does not have.
type policyDBs struct {
	engine   string
	src, dst string
	exec     func(t *testing.T, db, sql string)
	// rows runs a query of one text column on db.
	rows func(t *testing.T, db, sql string) []string
	// tableRef names a table of db in SQL; ctl is the control schema.
	tableRef func(db, table string) string
	ctl      string
	mapping  func() []byte
	create   []string // the source tables
	refuse   []string // the target's refusals
	allow    []string // undoes them
	concat   func(cols ...string) string
}

func newPolicyDBs(t *testing.T, engine, label string) *policyDBs {
	switch engine {
	case "postgres":
		p := &policyDBs{engine: engine, src: testenv.NewPGDatabase(t, label+"_src"), dst: testenv.NewPGDatabase(t, label+"_dst"), ctl: "public"}
		p.exec = func(t *testing.T, db, sql string) { t.Helper(); testenv.Exec(t, db, sql) }
		p.rows = func(t *testing.T, db, sql string) []string {
			t.Helper()
			conn := testenv.Connect(t, db)
			defer conn.Close(context.Background())
			rows, err := conn.Query(context.Background(), sql)
			if err != nil && strings.Contains(err.Error(), "does not exist") {
				return []string{"<no table>"}
			}
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			return out
		}
		p.tableRef = func(_, table string) string { return "public." + table }
		p.mapping = func() []byte { return testenv.IncludeAll("public") }
		p.create = []string{`CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)`, `CREATE TABLE other (id int PRIMARY KEY, n int NOT NULL)`}
		p.refuse = []string{
			`ALTER TABLE items ADD CONSTRAINT no_bad CHECK (v <> 'bad') NOT VALID`,
			`CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'row % is kept', OLD.id; END$$`,
			`CREATE TRIGGER keep_row BEFORE DELETE ON items FOR EACH ROW WHEN (OLD.v = 'keep') EXECUTE FUNCTION keep_row()`,
		}
		p.allow = []string{`ALTER TABLE items DROP CONSTRAINT no_bad`, `DROP TRIGGER keep_row ON items`}
		p.concat = func(cols ...string) string { return "concat_ws('|', " + strings.Join(cols, ", ") + ")" }
		return p
	default:
		my := testenv.NewMySQLDatabase(t, label)
		p := &policyDBs{engine: engine, src: my, dst: my + "_dst"}
		p.ctl = p.dst
		t.Cleanup(func() { testenv.MySQLExec(t, "", "DROP DATABASE IF EXISTS "+p.dst) })
		p.exec = func(t *testing.T, db, sql string) { t.Helper(); testenv.MySQLExec(t, db, sql) }
		p.rows = func(t *testing.T, db, sql string) []string {
			t.Helper()
			conn := testenv.MySQLConnect(t, "")
			defer conn.Close()
			r, err := conn.Execute(sql)
			if err != nil {
				if strings.Contains(err.Error(), "doesn't exist") || strings.Contains(err.Error(), "Unknown database") {
					return []string{"<no table>"}
				}
				t.Fatalf("%s: %v", sql, err)
			}
			var out []string
			for i := range r.RowNumber() {
				s, _ := r.GetString(i, 0)
				out = append(out, s)
			}
			return out
		}
		p.tableRef = func(db, table string) string { return db + "." + table }
		p.mapping = func() []byte { return renameSchema(p.src, p.dst) }
		p.create = []string{`CREATE TABLE items (id int PRIMARY KEY, v varchar(40) NOT NULL)`, `CREATE TABLE other (id int PRIMARY KEY, n int NOT NULL)`}
		p.refuse = []string{
			`ALTER TABLE items ADD CONSTRAINT no_bad CHECK (v <> 'bad')`,
			`CREATE TRIGGER keep_row BEFORE DELETE ON items FOR EACH ROW BEGIN IF OLD.v = 'keep' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'row is kept'; END IF; END`,
		}
		p.allow = []string{`ALTER TABLE items DROP CONSTRAINT no_bad`, `DROP TRIGGER keep_row`}
		p.concat = func(cols ...string) string { return "CONCAT_WS('|', " + strings.Join(cols, ", ") + ")" }
		return p
	}
}

// session returns a function that runs SQL on the source over one
// connection, for writers that run many statements.
func (p *policyDBs) session(t *testing.T) func(sql string) {
	t.Helper()
	if p.engine == "postgres" {
		conn := testenv.Connect(t, p.src)
		return func(sql string) {
			if _, err := conn.Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	}
	conn := testenv.MySQLConnect(t, p.src)
	return func(sql string) {
		if _, err := conn.Execute(sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
}

func (p *policyDBs) task(id, typ, settings string) *task.Task {
	ep := testenv.PGEndpoint
	src, dst := ep(p.src), ep(p.dst)
	ctl := ""
	if p.engine != "postgres" {
		src, dst = testenv.MySQLEndpoint(), testenv.MySQLEndpoint()
		ctl = `"ControlTablesSettings":{"ControlSchema":"` + p.ctl + `"}`
	}
	doc := "{" + strings.Trim(strings.Join([]string{ctl, settings}, ","), ",") + "}"
	return &task.Task{ReplicationConfigIdentifier: id, ReplicationType: typ, SourceEndpoint: src, TargetEndpoint: dst,
		TableMappings: p.mapping(), ReplicationSettings: []byte(doc)}
}

func (p *policyDBs) setUp(t *testing.T, rows int) {
	t.Helper()
	for _, q := range p.create {
		p.exec(t, p.src, q)
	}
	for i := 1; i <= rows; i += 500 {
		var vals, others []string
		for j := i; j < i+500 && j <= rows; j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'v%d')", j, j))
			others = append(others, fmt.Sprintf("(%d, %d)", j, j))
		}
		p.exec(t, p.src, "INSERT INTO items VALUES "+strings.Join(vals, ", "))
		p.exec(t, p.src, "INSERT INTO other VALUES "+strings.Join(others, ", "))
	}
}

// table returns db's rows of table as id|value lines, sorted.
func (p *policyDBs) table(t *testing.T, db, table string) []string {
	t.Helper()
	col := "v"
	if table == "other" {
		col = "n"
	}
	return sortedCopy(p.rows(t, db, "SELECT "+p.concat("id", col)+" FROM "+p.tableRef(db, table)))
}

// waitTable waits until table's rows on the target are want().
func (p *policyDBs) waitTable(t *testing.T, r testenv.Replication, table string, want func() []string) {
	t.Helper()
	waitRows(t, r, table, time.Minute, want, func() []string { return p.table(t, p.dst, table) })
}

// exceptions returns task's rows of awsdms_apply_exceptions as
// table|statement|error lines, in the order they were written.
func (p *policyDBs) exceptions(t *testing.T, taskName string) []string {
	t.Helper()
	q := `SELECT concat_ws('|', "TABLE_NAME", "STATEMENT", "ERROR") FROM public.awsdms_apply_exceptions WHERE "TASK_NAME" = '` + taskName + `' ORDER BY "ERROR_TIME"`
	if p.engine != "postgres" {
		q = "SELECT CONCAT_WS('|', TABLE_NAME, STATEMENT, ERROR) FROM " + p.ctl + ".awsdms_apply_exceptions WHERE TASK_NAME = '" + taskName + "' ORDER BY ERROR_TIME"
	}
	return p.rows(t, p.dst, q)
}

// suspendedTables returns task's rows of awsdms_suspended_tables.
func (p *policyDBs) suspendedTables(t *testing.T, taskName string) []string {
	t.Helper()
	q := `SELECT "TABLE_NAME" || '|' || "SUSPEND_REASON" FROM public.awsdms_suspended_tables WHERE "TASK_NAME" = '` + taskName + `'`
	if p.engine != "postgres" {
		q = "SELECT CONCAT(TABLE_NAME, '|', SUSPEND_REASON) FROM " + p.ctl + ".awsdms_suspended_tables WHERE TASK_NAME = '" + taskName + "'"
	}
	return p.rows(t, p.dst, q)
}

// start runs a full-load-and-cdc replication with settings, waits for
// its load, and makes the target refuse rows.
func (p *policyDBs) start(t *testing.T, id, settings string) *testenv.Running {
	t.Helper()
	r := testenv.Start(t, p.task(id, "full-load-and-cdc", settings))
	p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
	p.refuseOnTarget(t)
	return r
}

func (p *policyDBs) refuseOnTarget(t *testing.T) {
	t.Helper()
	for _, q := range p.refuse {
		p.exec(t, p.dst, q)
	}
}

func statsOf(t *testing.T, r *testenv.Running, table string) runtime.TableSnapshot {
	t.Helper()
	for _, ts := range r.Stats.Snapshot().Tables {
		if ts.TableName == table {
			return ts
		}
	}
	return runtime.TableSnapshot{}
}

// waitState waits until the table's statistics say ok.
func waitState(t *testing.T, r *testenv.Running, table, what string, ok func(runtime.TableSnapshot) bool) runtime.TableSnapshot {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ts := statsOf(t, r, table)
		if ok(ts) {
			return ts
		}
		if err := r.Err(); err != nil {
			t.Fatalf("replication ended while waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute; statistics %+v", what, ts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func policyEngines(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range []string{"postgres", "mariadb"} {
		t.Run(e, func(t *testing.T) { fn(t, e) })
	}
}

// TestErrorPolicyDefaults: with no ErrorBehavior, a refused insert, update
// and delete, an update of a row the target lacks and an insert of a key
// it has are each recorded in awsdms_apply_exceptions with their
// statement, left out, and counted; a delete of a missing row is counted
// only (DMS's IGNORE_RECORD); every other change of the table and of the
// other table is applied, and nothing stops.
func TestErrorPolicyDefaults(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epdef")
		p.setUp(t, 200)
		r := testenv.Start(t, p.task("epdef", "full-load-and-cdc", ""))
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		p.exec(t, p.src, `UPDATE items SET v = 'keep' WHERE id = 7`)
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		p.refuseOnTarget(t)
		// The target loses and gains rows behind the replication's back.
		p.exec(t, p.dst, "DELETE FROM "+p.tableRef(p.dst, "items")+" WHERE id IN (9, 11)")
		p.exec(t, p.dst, "INSERT INTO "+p.tableRef(p.dst, "items")+" VALUES (1002, 'target''s own')")
		want := p.table(t, p.dst, "items")
		for _, q := range []string{
			`INSERT INTO items VALUES (1001, 'bad')`,       // refused: CHECK
			`UPDATE items SET v = 'bad' WHERE id = 5`,      // refused: CHECK
			`DELETE FROM items WHERE id = 7`,               // refused: trigger
			`UPDATE items SET v = 'changed' WHERE id = 9`,  // conflict: no row
			`INSERT INTO items VALUES (1002, 'source''s')`, // conflict: key taken
			`DELETE FROM items WHERE id = 11`,              // conflict: no row, ignored
			`UPDATE items SET v = 'fine' WHERE id = 10`,
			`INSERT INTO items VALUES (1003, 'after')`,
			`INSERT INTO other VALUES (1001, 1)`,
		} {
			p.exec(t, p.src, q)
		}
		// One source transaction holding a refused row and good ones: the
		// good ones are applied.
		if engine == "postgres" {
			p.exec(t, p.src, `BEGIN; INSERT INTO items VALUES (1004, 'in txn'); INSERT INTO items VALUES (1005, 'bad'); UPDATE items SET v = 'in txn too' WHERE id = 12; COMMIT`)
		} else {
			conn := testenv.MySQLConnect(t, p.src)
			for _, q := range []string{"BEGIN", `INSERT INTO items VALUES (1004, 'in txn')`, `INSERT INTO items VALUES (1005, 'bad')`, `UPDATE items SET v = 'in txn too' WHERE id = 12`, "COMMIT"} {
				if _, err := conn.Execute(q); err != nil {
					t.Fatal(err)
				}
			}
			conn.Close()
		}
		want = edit(want, map[string]string{"10": "fine", "12": "in txn too", "1003": "after", "1004": "in txn"})
		p.waitTable(t, r, "items", func() []string { return want })
		p.waitTable(t, r, "other", func() []string { return p.table(t, p.src, "other") })

		xs := p.exceptions(t, "epdef")
		wantIn := [][]string{{"1001", "CHECK", "bad"}, {"SET", "bad", "5"}, {"DELETE", "7"}, {"9", "changed", "conflict"}, {"1002", "source", "conflict"}, {"1005", "bad"}}
		if len(xs) != len(wantIn) {
			t.Fatalf("awsdms_apply_exceptions has %d rows, want %d:\n%s", len(xs), len(wantIn), strings.Join(xs, "\n"))
		}
		for i, x := range xs {
			for _, w := range wantIn[i] {
				if w == "CHECK" {
					continue // the constraint's wording is the engine's
				}
				if !strings.Contains(x, w) || !strings.HasPrefix(x, "items|") {
					t.Errorf("exception %d = %q, want it to name items and contain %q", i+1, x, w)
				}
			}
		}
		ts := statsOf(t, r, "items")
		if ts.TableState != runtime.StateCompleted || ts.ApplyErrors != 4 || ts.ApplyMisses != 3 {
			t.Errorf("items statistics: state %q, %d refused, %d conflicts; want Table completed, 4, 3", ts.TableState, ts.ApplyErrors, ts.ApplyMisses)
		}
		if len(ts.Warnings) == 0 || !strings.Contains(strings.Join(ts.Warnings, ";"), "awsdms_apply_exceptions") {
			t.Errorf("items warnings %q do not point at awsdms_apply_exceptions", ts.Warnings)
		}
	})
}

// edit returns id|value lines with the values of ids changed or added;
// an empty value removes the row.
func edit(lines []string, set map[string]string) []string {
	out := make([]string, 0, len(lines)+len(set))
	seen := map[string]bool{}
	for _, l := range lines {
		id, _, _ := strings.Cut(l, "|")
		v, ok := set[id]
		seen[id] = ok
		switch {
		case ok && v == "":
			continue
		case ok:
			l = id + "|" + v
		}
		out = append(out, l)
	}
	for id, v := range set {
		if !seen[id] && v != "" {
			out = append(out, id+"|"+v)
		}
	}
	return sortedCopy(out)
}

// TestErrorPolicySuspendAndReload: DataErrorPolicy SUSPEND_TABLE takes
// the table of a refused row out of the replication (Table error, with the
// reason, stored on the target so a restart keeps it out) while the other
// table keeps flowing; once the cause is fixed, a reload of the table
// brings it back equal to the source.
func TestErrorPolicySuspendAndReload(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epsus")
		p.setUp(t, 100)
		settings := `"ErrorBehavior":{"DataErrorPolicy":"SUSPEND_TABLE"}`
		r := p.start(t, "epsus", settings)
		before := p.table(t, p.dst, "items")
		p.exec(t, p.src, `INSERT INTO items VALUES (500, 'bad')`)
		p.exec(t, p.src, `INSERT INTO items VALUES (501, 'after')`)
		ts := waitState(t, r, "items", "items suspended", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateError })
		if !strings.Contains(ts.TableStateDetails, "DataErrorPolicy SUSPEND_TABLE") || !strings.Contains(ts.TableStateDetails, "items") {
			t.Errorf("TableStateDetails %q does not say which policy suspended items", ts.TableStateDetails)
		}
		for i := range 20 {
			p.exec(t, p.src, fmt.Sprintf(`INSERT INTO other VALUES (%d, %d)`, 1000+i, i))
		}
		p.exec(t, p.src, `UPDATE items SET v = 'later' WHERE id = 3`)
		p.waitTable(t, r, "other", func() []string { return p.table(t, p.src, "other") })
		if got := p.table(t, p.dst, "items"); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("a suspended table was written: %s", firstDiff("items", before, got))
		}
		if s := p.suspendedTables(t, "epsus"); len(s) != 1 || !strings.HasPrefix(s[0], "items|") {
			t.Fatalf("awsdms_suspended_tables = %q, want items", s)
		}
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		// A restart keeps it suspended.
		r = testenv.Start(t, p.task("epsus", "full-load-and-cdc", settings))
		waitState(t, r, "items", "items still suspended after a restart", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateError })
		p.exec(t, p.src, `INSERT INTO other VALUES (2000, 0)`)
		p.exec(t, p.src, `UPDATE items SET v = 'later still' WHERE id = 4`)
		p.waitTable(t, r, "other", func() []string { return p.table(t, p.src, "other") })
		if got := p.table(t, p.dst, "items"); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("a suspended table was written after a restart: %s", firstDiff("items", before, got))
		}
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		// Fixed, and reloaded.
		for _, q := range p.allow {
			p.exec(t, p.dst, q)
		}
		tk := p.task("epsus", "full-load-and-cdc", settings)
		tk.ReloadTables, tk.ReloadToken = []string{sourceName(p, "items")}, "reload-1"
		r = testenv.Start(t, tk)
		p.exec(t, p.src, `INSERT INTO items VALUES (502, 'after the reload')`)
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		p.waitTable(t, r, "other", func() []string { return p.table(t, p.src, "other") })
		waitState(t, r, "items", "items back", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateCompleted })
		if s := p.suspendedTables(t, "epsus"); len(s) != 0 {
			t.Fatalf("awsdms_suspended_tables still holds %q after the reload", s)
		}
	})
}

// sourceName is the source name of a table, as reloads name it.
func sourceName(p *policyDBs, table string) string {
	if p.engine == "postgres" {
		return "public." + table
	}
	return p.src + "." + table
}

// TestErrorPolicyStopTask: DataErrorPolicy STOP_TASK stops the replication
// at the refused row with an error naming the table and the statement,
// before the position passes it: fixed and started again, the row is
// applied and nothing is lost.
func TestErrorPolicyStopTask(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epstop")
		p.setUp(t, 100)
		settings := `"ErrorBehavior":{"DataErrorPolicy":"STOP_TASK"}`
		r := p.start(t, "epstop", settings)
		p.exec(t, p.src, `INSERT INTO other VALUES (900, 1)`)
		p.exec(t, p.src, `INSERT INTO items VALUES (900, 'bad')`)
		p.exec(t, p.src, `INSERT INTO items VALUES (901, 'after')`)
		deadline := time.Now().Add(time.Minute)
		for r.Err() == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		err := r.Err()
		if err == nil {
			t.Fatal("the replication did not stop at the refused row")
		}
		for _, w := range []string{"DataErrorPolicy STOP_TASK", "items", "900"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("the replication's error does not contain %q: %v", w, err)
			}
		}
		if xs := p.exceptions(t, "epstop"); len(xs) != 0 {
			t.Errorf("STOP_TASK recorded exceptions: %q", xs)
		}
		for _, q := range p.allow {
			p.exec(t, p.dst, q)
		}
		r = testenv.Start(t, p.task("epstop", "full-load-and-cdc", settings))
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		p.waitTable(t, r, "other", func() []string { return p.table(t, p.src, "other") })
	})
}

// TestErrorPolicyEscalation: with DataErrorEscalationCount 2, the first
// refused row of a table is recorded and left out (LOG_ERROR), the second
// suspends the table (DataErrorEscalationPolicy's default); with
// IGNORE_RECORD on conflicts, a conflict writes no exception row.
func TestErrorPolicyEscalation(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epesc")
		p.setUp(t, 100)
		r := p.start(t, "epesc", `"ErrorBehavior":{"DataErrorEscalationCount":2,"ApplyErrorUpdatePolicy":"IGNORE_RECORD"}`)
		p.exec(t, p.dst, "DELETE FROM "+p.tableRef(p.dst, "items")+" WHERE id = 20")
		p.exec(t, p.src, `UPDATE items SET v = 'gone' WHERE id = 20`)
		p.exec(t, p.src, `INSERT INTO items VALUES (600, 'bad')`)
		p.exec(t, p.src, `INSERT INTO items VALUES (601, 'good')`)
		p.waitTable(t, r, "items", func() []string {
			return edit(p.table(t, p.src, "items"), map[string]string{"600": "", "20": ""})
		})
		if ts := statsOf(t, r, "items"); ts.TableState != runtime.StateCompleted {
			t.Fatalf("items is %q after one refused row, want Table completed", ts.TableState)
		}
		p.exec(t, p.src, `INSERT INTO items VALUES (602, 'bad')`)
		p.exec(t, p.src, `INSERT INTO items VALUES (603, 'good')`)
		ts := waitState(t, r, "items", "items suspended at the second refused row", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateError })
		if !strings.Contains(ts.TableStateDetails, "DataErrorEscalationPolicy SUSPEND_TABLE") {
			t.Errorf("TableStateDetails %q does not name the escalation", ts.TableStateDetails)
		}
		xs := p.exceptions(t, "epesc")
		if len(xs) != 2 || !strings.Contains(xs[0], "600") || !strings.Contains(xs[1], "602") {
			t.Errorf("awsdms_apply_exceptions = %q, want the rows 600 and 602", xs)
		}
		if ts.ApplyMisses != 1 {
			t.Errorf("items counted %d conflicts, want 1 (the ignored update)", ts.ApplyMisses)
		}
	})
}

// TestErrorPolicyFullLoad: into target tables made beforehand
// (TRUNCATE_BEFORE_LOAD) that refuse some rows, the full load leaves out
// exactly the refused rows, records each in awsdms_apply_exceptions (a
// value too long under DataTruncationErrorPolicy, a CHECK under
// DataErrorPolicy) and loads every other row; a table the target cannot
// load at all is suspended (TableErrorPolicy's default) while the rest
// load and then follow the source.
func TestErrorPolicyFullLoad(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epfl")
		p.setUp(t, 3000)
		p.exec(t, p.src, `UPDATE items SET v = 'bad' WHERE id IN (17, 1500, 2999)`)
		p.exec(t, p.src, `UPDATE items SET v = 'a value far too long' WHERE id = 2000`)
		if engine == "postgres" {
			p.exec(t, p.dst, `CREATE TABLE items (id int PRIMARY KEY, v varchar(12) NOT NULL CHECK (v <> 'bad'))`)
			p.exec(t, p.dst, `CREATE TABLE other (id int PRIMARY KEY)`) // lacks n
		} else {
			p.exec(t, "", "CREATE DATABASE "+p.dst)
			p.exec(t, p.dst, `CREATE TABLE items (id int PRIMARY KEY, v varchar(12) NOT NULL, CONSTRAINT no_bad CHECK (v <> 'bad'))`)
			p.exec(t, p.dst, `CREATE TABLE other (id int PRIMARY KEY)`)
		}
		r := testenv.Start(t, p.task("epfl", "full-load-and-cdc", `"FullLoadSettings":{"TargetTablePrepMode":"TRUNCATE_BEFORE_LOAD"},"SluiceSettings":{"ChunkPages":2}`))
		want := edit(p.table(t, p.src, "items"), map[string]string{"17": "", "1500": "", "2999": "", "2000": ""})
		p.waitTable(t, r, "items", func() []string { return want })
		ts := waitState(t, r, "other", "other suspended", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateError })
		if !strings.Contains(ts.TableStateDetails, "TableErrorPolicy SUSPEND_TABLE") {
			t.Errorf("other's TableStateDetails %q do not name TableErrorPolicy", ts.TableStateDetails)
		}
		waitState(t, r, "items", "items loaded", func(ts runtime.TableSnapshot) bool { return ts.TableState == runtime.StateCompleted })
		xs := p.exceptions(t, "epfl")
		var items []string
		for _, x := range xs {
			if strings.HasPrefix(x, "items|") {
				items = append(items, x)
			}
		}
		if len(items) != 4 || len(xs) != 5 {
			t.Fatalf("awsdms_apply_exceptions = %q, want 4 rows of items and 1 of other", xs)
		}
		for _, id := range []string{"17", "1500", "2999", "2000"} {
			if !strings.Contains(strings.Join(items, "\n"), id+"\t") {
				t.Errorf("no exception holds the row %s: %q", id, items)
			}
		}
		if !strings.Contains(strings.Join(items, "\n"), "truncation") {
			t.Errorf("the long value is not recorded as a truncation: %q", items)
		}
		if ts := statsOf(t, r, "items"); ts.ApplyErrors != 4 || ts.FullLoadRows != 2996 {
			t.Errorf("items: %d refused, %d loaded; want 4, 2996", ts.ApplyErrors, ts.FullLoadRows)
		}
		// The change stream follows items and leaves other out.
		p.exec(t, p.src, `INSERT INTO items VALUES (5000, 'later')`)
		p.exec(t, p.src, `INSERT INTO other VALUES (5000, 1)`)
		want = edit(want, map[string]string{"5000": "later"})
		p.waitTable(t, r, "items", func() []string { return want })
	})
}

// TestErrorPolicyKill9: the replicator is killed with SIGKILL again and
// again just after source transactions that hold a refused row beside good
// ones: each refused row ends in awsdms_apply_exceptions exactly once, and
// every good row arrives exactly once.
func TestErrorPolicyKill9(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epkill")
		p.setUp(t, 50)
		dir := t.TempDir()
		tf := writeTask(t, dir, p.task("epkill", "full-load-and-cdc", ""))
		proc := startReplicator(t, tf, dir)
		p.waitTable(t, proc, "items", func() []string { return p.table(t, p.src, "items") })
		p.refuseOnTarget(t)
		want := p.table(t, p.dst, "items")
		bad := 0
		for round := range 4 {
			for i := range 12 {
				id := 1000 + round*100 + i
				stmts := []string{fmt.Sprintf(`INSERT INTO items VALUES (%d, 'good')`, id)}
				want = append(want, fmt.Sprintf("%d|good", id))
				if i%3 == 0 {
					stmts = append(stmts, fmt.Sprintf(`INSERT INTO items VALUES (%d, 'bad')`, id+50))
					bad++
				}
				stmts = append(stmts, fmt.Sprintf(`UPDATE other SET n = n + 1 WHERE id = %d`, i+1))
				p.txn(t, stmts)
			}
			time.Sleep(time.Duration(5+round*15) * time.Millisecond)
			proc.kill(t)
			proc = startReplicator(t, tf, dir)
		}
		p.waitTable(t, proc, "items", func() []string { return sortedCopy(want) })
		p.waitTable(t, proc, "other", func() []string { return p.table(t, p.src, "other") })
		xs := p.exceptions(t, "epkill")
		seen := map[string]int{}
		for _, x := range xs {
			for round := range 4 {
				for i := 0; i < 12; i += 3 {
					if id := fmt.Sprint(1000 + round*100 + i + 50); strings.Contains(x, id) {
						seen[id]++
					}
				}
			}
		}
		if len(xs) != bad || len(seen) != bad {
			t.Fatalf("awsdms_apply_exceptions holds %d rows for %d distinct refused rows, want %d each:\n%s", len(xs), len(seen), bad, strings.Join(xs, "\n"))
		}
	})
}

// txn runs stmts in one source transaction.
func (p *policyDBs) txn(t *testing.T, stmts []string) {
	t.Helper()
	if p.engine == "postgres" {
		p.exec(t, p.src, "BEGIN; "+strings.Join(stmts, "; ")+"; COMMIT")
		return
	}
	conn := testenv.MySQLConnect(t, p.src)
	defer conn.Close()
	for _, q := range append(append([]string{"BEGIN"}, stmts...), "COMMIT") {
		if _, err := conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestErrorPolicyNoTables: FailOnNoTablesCaptured false lets a full load
// whose mappings select nothing finish having loaded nothing; by default
// it fails, saying what to check.
func TestErrorPolicyNoTables(t *testing.T) {
	p := newPolicyDBs(t, "postgres", "epnone")
	tk := p.task("epnone", "full-load", `"ErrorBehavior":{"FailOnNoTablesCaptured":false}`)
	tk.TableMappings = testenv.IncludeAll("nowhere")
	if err := task.Run(context.Background(), tk, nil, nil); err != nil {
		t.Fatalf("FailOnNoTablesCaptured false: %v", err)
	}
	tk = p.task("epnone", "full-load", "")
	tk.TableMappings = testenv.IncludeAll("nowhere")
	if err := task.Run(context.Background(), tk, nil, nil); !errors.Is(err, runtime.ErrNothingSelected) {
		t.Fatalf("by default: %v, want %v", err, runtime.ErrNothingSelected)
	}
}

// TestAPIErrorPolicies drives ErrorBehavior through the DMS API with the
// official SDK: a member Sluice does not honour is refused by name; a
// refused row suspends its table, which DescribeReplicationTableStatistics
// shows as Table error with the reason while the other table keeps
// flowing; ReloadReplicationTables brings it back.
func TestAPIErrorPolicies(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apierr", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)`)
	testenv.Exec(t, f.src, `CREATE TABLE other (id int PRIMARY KEY, n int NOT NULL)`)
	testenv.Exec(t, f.src, `INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 500) g`)
	modify := func(doc string) error {
		_, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn), ReplicationSettings: aws.String(doc)})
		return err
	}
	err := modify(`{"ErrorBehavior":{"DataErrorPolicy":"SUSPEND_TABLE","EventErrorPolicy":"IGNORE"}}`)
	requireFault(t, err, "InvalidParameterValueException")
	if !strings.Contains(err.Error(), "ErrorBehavior.EventErrorPolicy") {
		t.Errorf("the refusal does not name the member: %v", err)
	}
	requireFault(t, modify(`{"ErrorBehavior":{"DataErrorPolicy":"SUSPEND"}}`), "InvalidParameterValueException")
	if err := modify(`{"ErrorBehavior":{"DataErrorPolicy":"SUSPEND_TABLE"}}`); err != nil {
		t.Fatalf("ModifyReplicationConfig: %v", err)
	}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items", "other")
	testenv.Exec(t, f.dst, `ALTER TABLE items ADD CONSTRAINT no_bad CHECK (v <> 'bad') NOT VALID`)
	testenv.Exec(t, f.src, `INSERT INTO items VALUES (1000, 'bad')`)
	testenv.Exec(t, f.src, `INSERT INTO other SELECT g, g FROM generate_series(1, 100) g`)
	deadline := time.Now().Add(time.Minute)
	var ts types.TableStatistics
	for ts = apiTableStats(t, c, f.configArn, "items"); aws.ToString(ts.TableState) != "Table error"; ts = apiTableStats(t, c, f.configArn, "items") {
		if time.Now().After(deadline) {
			t.Fatalf("items is %q, want Table error", aws.ToString(ts.TableState))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := aws.ToString(ts.ValidationStateDetails); !strings.Contains(d, "DataErrorPolicy SUSPEND_TABLE") || !strings.Contains(d, "no_bad") {
		t.Errorf("items' details %q do not say why it is suspended", d)
	}
	testenv.Exec(t, f.src, `INSERT INTO other SELECT g, g FROM generate_series(101, 200) g`)
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "other")
	if r := f.describe(t, c); aws.ToString(r.Status) != "running" {
		t.Fatalf("the replication is %q with one table suspended, want running", aws.ToString(r.Status))
	}
	testenv.Exec(t, f.dst, `ALTER TABLE items DROP CONSTRAINT no_bad`)
	if _, err := c.ReloadReplicationTables(ctx, &dms.ReloadReplicationTablesInput{ReplicationConfigArn: aws.String(f.configArn),
		TablesToReload: []types.TableToReload{{SchemaName: aws.String("public"), TableName: aws.String("items")}}}); err != nil {
		t.Fatalf("ReloadReplicationTables: %v", err)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items", "other")
	for deadline = time.Now().Add(time.Minute); aws.ToString(apiTableStats(t, c, f.configArn, "items").TableState) != "Table completed"; {
		if time.Now().After(deadline) {
			t.Fatal("items did not come back to Table completed after the reload")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAPIErrorPolicyStopNamesTable: a replication stopped by STOP_TASK
// says, in DescribeReplications' FailureMessages, which table refused which
// row, even when the refused insert was pipelined before an insert into
// another table (the message named that other table before).
func TestAPIErrorPolicyStopNamesTable(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apistop", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)`)
	testenv.Exec(t, f.src, `CREATE TABLE events (id int PRIMARY KEY, what text)`)
	if _, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn),
		ReplicationSettings: aws.String(`{"ErrorBehavior":{"DataErrorPolicy":"STOP_TASK"}}`)}); err != nil {
		t.Fatalf("ModifyReplicationConfig: %v", err)
	}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	testenv.Exec(t, f.dst, `ALTER TABLE items ADD CONSTRAINT no_bad CHECK (v <> 'bad') NOT VALID`)
	testenv.Exec(t, f.src, `BEGIN; INSERT INTO items VALUES (1, 'bad'); INSERT INTO events VALUES (1, 'after'); COMMIT`)
	r := f.waitFor(t, c, "failed", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "failed" })
	msg := strings.Join(r.FailureMessages, "; ")
	if !strings.Contains(msg, "insert of public.items") || !strings.Contains(msg, "STOP_TASK") || strings.Contains(msg, "events") {
		t.Fatalf("FailureMessages %q: want the refused insert into public.items, and no word of events", msg)
	}
}

// TestPipelinedErrorNamesStatement: when the PostgreSQL applier sends a
// pipeline to prepare a statement for another table, the error of a
// statement already in the pipeline is that statement's: it names its
// table, not the one being prepared.
func TestPipelinedErrorNamesStatement(t *testing.T) {
	db := testenv.NewPGDatabase(t, "pipename")
	testenv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text CHECK (v <> 'bad')); CREATE TABLE events (id int PRIMARY KEY)`)
	ctx := context.Background()
	tg, err := pgtarget.New(ctx, pgtarget.Config{ConnString: testenv.PGURL(db), ControlSchema: "public", Task: "pipename"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	table := func(name string, cols ...string) *runtime.Table {
		tb := &runtime.Table{SourceSchema: "public", SourceName: name, Schema: "public", Name: name, Key: []int{0}, HasPrimaryKey: true}
		for _, c := range cols {
			tb.Columns = append(tb.Columns, runtime.Column{SourceName: c, Name: c, Type: "text"})
		}
		tb.Columns[0].Type = "integer"
		return tb
	}
	items, events := table("items", "id", "v"), table("events", "id")
	ap, err := tg.Applier(ctx, "pipename", []*runtime.Table{items, events}, runtime.ApplyOptions{}, runtime.NewStats())
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Close(ctx)
	val := func(s string) runtime.Value { return runtime.Value{Kind: runtime.Text, Data: []byte(s)} }
	if err := ap.Apply(ctx, &runtime.Change{Op: runtime.OpInsert, Table: items, New: runtime.Row{val("1"), val("bad")}}); err != nil {
		t.Fatalf("the insert into items is pipelined, not sent: %v", err)
	}
	err = ap.Apply(ctx, &runtime.Change{Op: runtime.OpInsert, Table: events, New: runtime.Row{val("1")}})
	if err == nil || !strings.Contains(err.Error(), `"public"."items"`) || strings.Contains(err.Error(), "events") {
		t.Fatalf("error %v: want it to name the insert into items, not events", err)
	}
	if runtime.Classify(err) != runtime.KindData {
		t.Errorf("Classify(%v) = %v, want a data error", err, runtime.Classify(err))
	}
}

// TestErrorPolicyOverwrite: INSERT_RECORD overwrites the row an insert
// finds with its key, UPDATE_RECORD inserts the row an update does not
// find, so the target ends equal to the source; neither records an
// exception.
func TestErrorPolicyOverwrite(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "epover")
		p.setUp(t, 50)
		r := testenv.Start(t, p.task("epover", "full-load-and-cdc", `"ErrorBehavior":{"ApplyErrorInsertPolicy":"INSERT_RECORD","ApplyErrorUpdatePolicy":"UPDATE_RECORD"}`))
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		p.exec(t, p.dst, "DELETE FROM "+p.tableRef(p.dst, "items")+" WHERE id = 9")
		p.exec(t, p.dst, "INSERT INTO "+p.tableRef(p.dst, "items")+" VALUES (1002, 'target''s own')")
		p.exec(t, p.src, `UPDATE items SET v = 'changed' WHERE id = 9`)
		p.exec(t, p.src, `INSERT INTO items VALUES (1002, 'source''s')`)
		p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
		if xs := p.exceptions(t, "epover"); len(xs) != 0 {
			t.Errorf("exceptions recorded: %q", xs)
		}
	})
}

// TestErrorPolicyBatchApply: with BatchApplyEnabled, a batch the target
// refuses a row of is applied again change by change: the refused row is
// recorded and left out, the rest of the batch applied.
func TestErrorPolicyBatchApply(t *testing.T) {
	p := newPolicyDBs(t, "postgres", "epbatch")
	p.setUp(t, 100)
	r := testenv.Start(t, p.task("epbatch", "full-load-and-cdc", `"TargetMetadata":{"BatchApplyEnabled":true}`))
	p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
	p.refuseOnTarget(t)
	p.exec(t, p.src, `BEGIN; INSERT INTO items SELECT g, 'batch ' || g FROM generate_series(200, 300) g; UPDATE items SET v = 'bad' WHERE id = 250; UPDATE items SET v = 'ok' WHERE id = 3; COMMIT`)
	want := edit(p.table(t, p.src, "items"), map[string]string{"250": "batch 250"})
	p.waitTable(t, r, "items", func() []string { return want })
	if xs := p.exceptions(t, "epbatch"); len(xs) != 1 || !strings.Contains(xs[0], "250") {
		t.Fatalf("awsdms_apply_exceptions = %q, want the update of 250", xs)
	}
}

// TestErrorPolicyRecoverableCount: RecoverableErrorCount 0 restarts
// nothing: a lost target session ends the replication, saying so.
func TestErrorPolicyRecoverableCount(t *testing.T) {
	p := newPolicyDBs(t, "postgres", "eprec")
	p.setUp(t, 10)
	r := testenv.Start(t, p.task("eprec", "full-load-and-cdc", `"ErrorBehavior":{"RecoverableErrorCount":0}`))
	// A row that arrives by the change stream: the load is over.
	p.exec(t, p.src, `INSERT INTO items VALUES (99, 'streamed')`)
	p.waitTable(t, r, "items", func() []string { return p.table(t, p.src, "items") })
	p.exec(t, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+p.dst+"' AND pid <> pg_backend_pid()")
	p.exec(t, p.src, `INSERT INTO items VALUES (100, 'after')`)
	deadline := time.Now().Add(time.Minute)
	for r.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "RecoverableErrorCount") {
		t.Fatalf("the replication's end: %v, want it to give up naming RecoverableErrorCount", err)
	}
}
