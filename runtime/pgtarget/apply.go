package pgtarget

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// pipelineDepth is how many statements go to the server in one round trip.
const pipelineDepth = 256

// applier writes the change stream on one session. Row changes become
// prepared statements sent in pipelined batches; a target transaction spans
// from the first change after a commit to the next Commit.
type applier struct {
	t     *Target
	conn  *pgxpool.Conn
	pg    *pgconn.PgConn
	task  string
	stats *runtime.Stats
	net   *netChanges // nil unless BatchApplyEnabled

	prepared map[string]string // SQL → prepared statement name
	// statements are the row statements built so far, per table and shape
	// (shapeKey); shape is the buffer the key is built in.
	statements map[*runtime.Table]map[string]*rowStatement
	shape      []byte
	// The SQL of the fencing check and of the position's upsert, built
	// once: every commit sends them.
	fenceSQL, stateSQL string
	// Batch apply's temporary tables: their numbers, and whether each
	// exists in the session (a rollback can undo its creation).
	tempNames map[*runtime.Table]int
	tempReady map[*runtime.Table]bool
	tempUsed  map[*runtime.Table]bool // written in the open transaction
	batch     pgconn.Batch
	queued    []queued
	open      bool
	// opts say how conflicts are written; trying is set while Try
	// applies a change, missed when its change found no row.
	opts           runtime.ApplyOptions
	trying, missed bool
	// skipped counts, per table, the conflicts skipped in the open
	// transaction: they count once it commits (a rolled back transaction
	// is applied again).
	skipped map[*runtime.Table]int64

	commits   []walCommit      // committed, not yet known to be durable
	durable   runtime.Position // last position known durable
	flushSeen time.Time        // when the target's flush position was last read
}

// queued remembers what each pipelined statement was, to check its result.
type queued struct {
	table *runtime.Table
	op    runtime.Op
}

// Applier implements runtime.Target.
func (t *Target) Applier(ctx context.Context, task string, tables []*runtime.Table, opts runtime.ApplyOptions, stats *runtime.Stats) (runtime.Applier, error) {
	if err := t.ensureControl(ctx); err != nil {
		return nil, err
	}
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		conn.Release()
		return nil, err
	}
	a := &applier{t: t, conn: conn, pg: conn.Conn().PgConn(), task: task, stats: stats, opts: opts,
		fenceSQL: t.fenceCheck(), stateSQL: fmt.Sprintf(upsertState, t.stateTable())}
	a.forgetStatements()
	if opts.Batch {
		a.net = newNetChanges(opts.MemoryLimit)
		a.tempNames, a.tempReady, a.tempUsed = map[*runtime.Table]int{}, map[*runtime.Table]bool{}, map[*runtime.Table]bool{}
	}
	return a, nil
}

func (a *applier) begin() {
	if !a.open {
		a.batch.ExecParams("BEGIN", nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		a.open = true
	}
}

// Apply implements runtime.Applier.
func (a *applier) Apply(ctx context.Context, c *runtime.Change) error {
	a.begin()
	if c.Op == runtime.OpDDL {
		return a.ddl(ctx, c.DDL)
	}
	if a.net != nil {
		if a.net.hold(c) {
			if a.net.bytes > a.net.limit {
				// A large source transaction: write what is held into
				// the open target transaction rather than grow.
				return a.flushNet(ctx, nil, nil)
			}
			return nil
		}
		// Changes that cannot be merged go in order after the table's
		// held changes.
		if err := a.flushNet(ctx, c.Table, c.Tables); err != nil {
			return err
		}
	}
	if err := a.queue(ctx, c); err != nil {
		return err
	}
	if len(a.queued) >= pipelineDepth {
		return a.send(ctx)
	}
	return nil
}

// queue adds one change's statement to the pipeline.
func (a *applier) queue(ctx context.Context, c *runtime.Change) error {
	if c.Op == runtime.OpTruncate {
		names := make([]string, len(c.Tables))
		for i, t := range c.Tables {
			names[i] = tableName(t)
		}
		a.batch.ExecParams("TRUNCATE "+strings.Join(names, ", "), nil, nil, nil, nil)
		a.queued = append(a.queued, queued{op: c.Op})
		return nil
	}
	return a.queueRow(ctx, c, queued{table: c.Table, op: c.Op})
}

// queueQuiet queues a row change whose result is not checked for a missing
// row, and sends the pipeline when it is full.
func (a *applier) queueQuiet(ctx context.Context, c *runtime.Change) error {
	if err := a.queueRow(ctx, c, queued{}); err != nil {
		return err
	}
	if len(a.queued) >= pipelineDepth {
		return a.send(ctx)
	}
	return nil
}

// queueRow adds a row change's prepared statement to the pipeline; q says
// how to check its result.
func (a *applier) queueRow(ctx context.Context, c *runtime.Change, q queued) error {
	st := a.rowStatement(c)
	if st.sql == "" {
		return nil
	}
	if st.name == "" && len(a.queued) > 0 {
		// What waits is sent first, so that its errors are its own and
		// not this statement's.
		if err := a.send(ctx); err != nil {
			return err
		}
	}
	if st.name == "" {
		var err error
		if st.name, err = a.prepare(ctx, st.sql); err != nil {
			return fmt.Errorf("prepare %s on %s: %w", c.Op, tableName(c.Table), err)
		}
	}
	a.batch.ExecPrepared(st.name, st.params(c), nil, nil)
	a.queued = append(a.queued, q)
	return nil
}

// rowStatement returns the statement of c's shape, built the first time
// the shape comes: building SQL for every change would cost more than
// sending it.
func (a *applier) rowStatement(c *runtime.Change) *rowStatement {
	a.shape = shapeKey(a.shape, c)
	if a.trying {
		a.shape = append(a.shape, 't')
	}
	shapes := a.statements[c.Table]
	if st := shapes[string(a.shape)]; st != nil {
		return st
	}
	if shapes == nil {
		shapes = map[string]*rowStatement{}
		a.statements[c.Table] = shapes
	}
	form := formFast
	if a.trying {
		form = formTried
	}
	sql, args := statement(c, a.mode(c.Op), form, a.t.conflictFunc())
	st := &rowStatement{sql: sql, args: args}
	shapes[string(a.shape)] = st
	return st
}

// prepare prepares sql on the session, once, and returns its name.
func (a *applier) prepare(ctx context.Context, sql string) (string, error) {
	if name, ok := a.prepared[sql]; ok {
		return name, nil
	}
	if len(a.queued) > 0 {
		// Prepare is its own round trip; send what waits first so the
		// session stays in order.
		if err := a.send(ctx); err != nil {
			return "", err
		}
	}
	name := "sluice_" + strconv.Itoa(len(a.prepared))
	if _, err := a.pg.Prepare(ctx, name, sql, nil); err != nil {
		a.open = false // the failed prepare aborted the transaction
		return "", err
	}
	a.prepared[sql] = name
	return name, nil
}

// ddl changes a target table as the source's table changed, in the open
// transaction, after everything before it.
func (a *applier) ddl(ctx context.Context, d *runtime.DDL) error {
	if a.net != nil {
		if err := a.flushNet(ctx, nil, nil); err != nil {
			return err
		}
	}
	var old string
	if d.Old != nil {
		old = tableName(d.Old)
	}
	var sqls []string
	switch d.Kind {
	case runtime.DDLAddColumn:
		c := d.New.Columns[d.Column]
		if c.Removed {
			return nil
		}
		s := "ALTER TABLE " + old + " ADD COLUMN " + ident(c.Name) + " " + c.Type
		if d.Default.Kind == runtime.Text {
			// The rows already there hold the source's default: the
			// binlog does not send them again.
			s += " DEFAULT " + pgtext.Literal(string(d.Default.Data)) + "::" + c.Type
		}
		sqls = append(sqls, s)
		if d.Default.Kind == runtime.Text {
			sqls = append(sqls, "ALTER TABLE "+old+" ALTER COLUMN "+ident(c.Name)+" DROP DEFAULT")
		}
	case runtime.DDLDropColumn:
		c := d.Old.Columns[d.Column]
		if c.Removed {
			return nil
		}
		sqls = append(sqls, "ALTER TABLE "+old+" DROP COLUMN "+ident(c.Name))
	case runtime.DDLAlterColumn:
		was, now := d.Old.Columns[d.OldColumn], d.New.Columns[d.Column]
		if now.Removed {
			return nil
		}
		if was.Name != now.Name {
			sqls = append(sqls, "ALTER TABLE "+old+" RENAME COLUMN "+ident(was.Name)+" TO "+ident(now.Name))
		}
		if was.Type != now.Type {
			sqls = append(sqls, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::%s", old, ident(now.Name), now.Type, ident(now.Name), now.Type))
		}
		switch {
		case was.NotNull && !now.NotNull:
			sqls = append(sqls, "ALTER TABLE "+old+" ALTER COLUMN "+ident(now.Name)+" DROP NOT NULL")
		case !was.NotNull && now.NotNull:
			sqls = append(sqls, "ALTER TABLE "+old+" ALTER COLUMN "+ident(now.Name)+" SET NOT NULL")
		}
	case runtime.DDLRenameTable:
		if d.New.Schema != d.Old.Schema {
			if _, err := a.pg.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(d.New.Schema)).ReadAll(); err != nil {
				return err
			}
			sqls = append(sqls, "ALTER TABLE "+old+" SET SCHEMA "+ident(d.New.Schema))
			old = ident(d.New.Schema, d.Old.Name)
		}
		if d.New.Name != d.Old.Name {
			sqls = append(sqls, "ALTER TABLE "+old+" RENAME TO "+ident(d.New.Name))
		}
	case runtime.DDLDropTable:
		sqls = append(sqls, "DROP TABLE IF EXISTS "+old)
	case runtime.DDLCreateTable:
		sqls = append(sqls, "CREATE SCHEMA IF NOT EXISTS "+ident(d.New.Schema), "DROP TABLE IF EXISTS "+tableName(d.New), createTable(d.New))
		for _, c := range d.New.Constraints {
			sqls = append(sqls, "ALTER TABLE "+tableName(d.New)+" ADD CONSTRAINT "+ident(c.Name)+" "+c.Def)
		}
	}
	for _, s := range sqls {
		a.batch.ExecParams(s, nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
	}
	if err := a.send(ctx); err != nil {
		return fmt.Errorf("apply %q to the target: %w", d.Statement, err)
	}
	// Prepared statements keep the parameter types they were planned
	// with: plan them again for the new shape.
	if len(a.prepared) > 0 {
		if _, err := a.pg.Exec(ctx, "DEALLOCATE ALL").ReadAll(); err != nil {
			return err
		}
	}
	a.forgetStatements()
	return nil
}

// forgetStatements starts the statements over: a table's shape changed,
// or the session's prepared statements were deallocated.
func (a *applier) forgetStatements() {
	a.prepared = map[string]string{}
	a.statements = map[*runtime.Table]map[string]*rowStatement{}
}

// send runs the pipelined statements and checks their results.
func (a *applier) send(ctx context.Context) error {
	_, err := a.sendResults(ctx)
	return err
}

func (a *applier) sendResults(ctx context.Context) ([]*pgconn.Result, error) {
	if len(a.queued) == 0 {
		return nil, nil
	}
	results, err := a.pg.ExecBatch(ctx, &a.batch).ReadAll()
	q := a.queued
	a.batch, a.queued = pgconn.Batch{}, a.queued[:0]
	if err != nil {
		// The pipeline stops at the statement the target refused: name
		// it, not the one that happened to send the pipeline.
		i := len(results)
		for j, r := range results {
			if r.Err != nil {
				i = j
				break
			}
		}
		if i < len(q) && q[i].table != nil {
			return nil, fmt.Errorf("apply the %s to %s: %w", q[i].op, tableName(q[i].table), err)
		}
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	for i, r := range results {
		if i >= len(q) || q[i].table == nil || r.CommandTag.RowsAffected() != 0 {
			continue
		}
		switch q[i].op {
		case runtime.OpInsert, runtime.OpUpdate, runtime.OpDelete:
		default:
			continue
		}
		switch a.mode(q[i].op) {
		case runtime.ConflictSkip:
			// The row was not as the source had it: count it and say so,
			// never silently.
			if a.skipped == nil {
				a.skipped = map[*runtime.Table]int64{}
			}
			a.skipped[q[i].table]++
			a.stats.Table(q[i].table.SourceSchema, q[i].table.SourceName).Warn(fmt.Sprintf("%s found the target's row not as the source had it (ErrorBehavior IGNORE_RECORD)", q[i].op))
		case runtime.ConflictReport:
			// Only Try's form leaves a conflict to be seen here; the fast
			// form's results are the conflict check's, empty when the row
			// was there.
			a.missed = a.missed || a.trying
		}
	}
	return results, nil
}

// Commit implements runtime.Applier.
func (a *applier) Commit(ctx context.Context, pos runtime.Position, commitTime time.Time, counts map[string]runtime.Counts) error {
	a.begin()
	if a.net != nil {
		if err := a.flushNet(ctx, nil, nil); err != nil {
			return err
		}
	}
	// The statements that close every target transaction are prepared
	// too: parsing and planning them each time costs the target more than
	// the rows of a small transaction.
	fence := []byte(strconv.FormatInt(a.t.cfg.Fence, 10))
	if a.t.cfg.Fence > 0 {
		name, err := a.prepare(ctx, a.fenceSQL)
		if err != nil {
			return fmt.Errorf("prepare the fencing check: %w", err)
		}
		a.batch.ExecPrepared(name, [][]byte{[]byte(a.task), fence}, nil, nil)
		a.queued = append(a.queued, queued{})
	}
	name, err := a.prepare(ctx, a.stateSQL)
	if err != nil {
		return fmt.Errorf("prepare the position's update: %w", err)
	}
	a.batch.ExecPrepared(name,
		[][]byte{[]byte(a.task), []byte(runtime.PhaseCDC), []byte(runtime.Checkpoint(pos)), []byte(commitTime.UTC().Format(time.RFC3339Nano)), fence, countsParam(counts)},
		nil, nil)
	a.queued = append(a.queued, queued{})
	a.batch.ExecParams("COMMIT", nil, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	// Where the commit record ends in the target's WAL, and how far the WAL
	// is flushed: the commit is durable once the flush passes it.
	if name, err = a.prepare(ctx, walPositions); err != nil {
		return fmt.Errorf("prepare the WAL position query: %w", err)
	}
	a.batch.ExecPrepared(name, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	results, err := a.sendResults(ctx)
	a.open = false
	clear(a.tempUsed) // ON COMMIT DELETE ROWS emptied them
	if err != nil {
		_ = a.Rollback(ctx)
		return err
	}
	last := results[len(results)-1]
	if len(last.Rows) != 1 || len(last.Rows[0]) != 2 {
		return fmt.Errorf("read the target's WAL position after commit: unexpected result")
	}
	inserted, err := runtime.ParseLSN(string(last.Rows[0][0]))
	if err != nil {
		return err
	}
	a.commits = append(a.commits, walCommit{target: inserted, pos: pos})
	for tb, n := range a.skipped {
		a.stats.Table(tb.SourceSchema, tb.SourceName).ApplyMisses.Add(n)
	}
	clear(a.skipped)
	return a.flushedUpTo(string(last.Rows[0][1]))
}

// walPositions reads where the target's WAL is written and flushed to.
const walPositions = "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text"

// walCommit is a commit whose durability the applier waits for.
type walCommit struct {
	target runtime.LSN // end of the commit record in the target's WAL
	pos    runtime.Position
}

// flushRecheck is how long a flush position read from the target stays fresh.
const flushRecheck = 100 * time.Millisecond

// flushedUpTo moves the commits the target's WAL flush has passed to durable.
func (a *applier) flushedUpTo(flush string) error {
	f, err := runtime.ParseLSN(flush)
	if err != nil {
		return err
	}
	a.flushSeen = time.Now()
	n := 0
	for n < len(a.commits) && a.commits[n].target <= f {
		a.durable = a.commits[n].pos
		n++
	}
	a.commits = append(a.commits[:0], a.commits[n:]...)
	return nil
}

// Durable implements runtime.Applier. The session commits asynchronously,
// as PostgreSQL's own subscriptions do: the commit returns before the WAL
// is flushed, and the position counts as applied only once it is.
func (a *applier) Durable(ctx context.Context) (runtime.Position, error) {
	// Every commit reads the flush position too; ask again only when the
	// commits have stopped coming for a while.
	if len(a.commits) > 0 && !a.open && time.Since(a.flushSeen) >= flushRecheck {
		var flush string
		if err := a.conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&flush); err != nil {
			return nil, err
		}
		if err := a.flushedUpTo(flush); err != nil {
			return nil, err
		}
	}
	return a.durable, nil
}

// Rollback implements runtime.Applier.
func (a *applier) Rollback(ctx context.Context) error {
	a.batch, a.queued = pgconn.Batch{}, nil
	clear(a.skipped)
	if a.net != nil {
		a.net.reset()
		a.tempReady = map[*runtime.Table]bool{}
		clear(a.tempUsed)
	}
	a.open = false
	return a.rollback(ctx)
}

func (a *applier) rollback(ctx context.Context) error {
	return a.pg.Exec(ctx, "ROLLBACK").Close()
}

// Close implements runtime.Applier.
func (a *applier) Close(ctx context.Context) error {
	if a.pg.IsClosed() {
		a.endLostSession(ctx)
	} else if a.open {
		_ = a.Rollback(ctx)
	}
	// Prepared statements belong to the session; do not hand it back.
	a.conn.Hijack().Close(ctx)
	return nil
}

// endLostSession ends the server side of a session whose connection was
// cut (a target that stopped answering, ExecuteTimeout): the server may
// not know it is gone and could still commit what it was sent after the
// replication has read its position again, and met those rows a second
// time. Waits up to 5 s for the session to end; best effort, bounded.
func (a *applier) endLostSession(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// A target still unreachable fails this too; the restart then waits
	// for the target like any other.
	_, _ = a.t.pool.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", a.pg.PID())
}

// rowStatement is the SQL of one shape of row change on a table, and where
// each of its parameters comes from.
type rowStatement struct {
	sql  string
	args []argSource
	name string // the prepared statement's name; "" until it is prepared
}

// argSource is a parameter's value: column col of the change's old or new
// row.
type argSource struct {
	old bool
	col int
}

// params returns the change's parameters in text form.
func (st *rowStatement) params(c *runtime.Change) [][]byte {
	params := make([][]byte, len(st.args))
	for j, a := range st.args {
		row := c.New
		if a.old {
			row = c.Old
		}
		if v := row[a.col]; v.Kind == runtime.Text {
			params[j] = v.Data
		}
	}
	return params
}

// shapeKey tells apart the changes of one table that need different SQL:
// the operation, whether an old row came, and which columns are unchanged
// (TOAST values the source did not send) in each row. It is built in buf,
// which the caller reuses.
func shapeKey(buf []byte, c *runtime.Change) []byte {
	buf = append(buf[:0], byte(c.Op))
	for _, row := range []runtime.Row{c.Old, c.New} {
		if row == nil {
			buf = append(buf, 'n')
			continue
		}
		buf = append(buf, 'r')
		for _, v := range row {
			if v.Kind == runtime.Unchanged {
				buf = append(buf, 'u')
			} else {
				buf = append(buf, '.')
			}
		}
	}
	return buf
}

// mode is how a conflict of op is written.
func (a *applier) mode(op runtime.Op) runtime.Conflict {
	switch op {
	case runtime.OpInsert:
		return a.opts.Inserts
	case runtime.OpUpdate:
		return a.opts.Updates
	}
	return a.opts.Deletes
}

// A statement's form: as the pipeline sends it (a conflict to report
// stops the transaction), as Try sends it (a conflict writes nothing and
// is seen in the result), or as awsdms_apply_exceptions shows it.
type form uint8

const (
	formFast form = iota
	formTried
	formShown
)

// statement returns the SQL of a row change and where its parameters come
// from; "" when the change writes nothing. A conflict of mode ConflictReport
// calls conflictFunc in the fast form.
func statement(c *runtime.Change, mode runtime.Conflict, f form, conflictFunc string) (string, []argSource) {
	t := c.Table
	var sb strings.Builder
	var args []argSource
	arg := func(old bool, i int) string {
		args = append(args, argSource{old: old, col: i})
		return "$" + strconv.Itoa(len(args))
	}
	switch c.Op {
	case runtime.OpInsert:
		var cols, vals []string
		for _, i := range t.Copied() {
			cols = append(cols, ident(t.Columns[i].Name))
			vals = append(vals, arg(false, i))
		}
		fmt.Fprintf(&sb, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (%s)", tableName(t), strings.Join(cols, ", "), strings.Join(vals, ", "))
		switch {
		case !keyed(t) || f == formShown:
		case mode == runtime.ConflictOverwrite:
			sb.WriteString(" ON CONFLICT (" + keyList(t) + ") DO " + conflictUpdate(t))
		case mode == runtime.ConflictSkip || f == formTried:
			sb.WriteString(" ON CONFLICT (" + keyList(t) + ") DO NOTHING")
		}
		// Reported in the fast form: a taken key stops the pipeline with
		// a unique violation.
	case runtime.OpUpdate:
		var set []string
		for _, i := range t.Copied() {
			col := t.Columns[i]
			if c.New[i].Kind == runtime.Unchanged || col.Identity == 'a' || (c.Old == nil && isKey(t, i)) {
				continue
			}
			set = append(set, ident(col.Name)+" = "+arg(false, i))
		}
		if len(set) == 0 {
			return "", nil
		}
		where, old := c.Old, true
		if where == nil {
			where, old = c.New, false
		}
		fmt.Fprintf(&sb, "UPDATE %s SET %s WHERE %s", tableName(t), strings.Join(set, ", "), match(t, where, func(i int) string { return arg(old, i) }))
	case runtime.OpDelete:
		fmt.Fprintf(&sb, "DELETE FROM %s WHERE %s", tableName(t), match(t, c.Old, func(i int) string { return arg(true, i) }))
	}
	if c.Op != runtime.OpInsert && mode == runtime.ConflictReport && f == formFast {
		return "WITH changed AS (" + sb.String() + " RETURNING 1) SELECT " + conflictFunc + "() WHERE NOT EXISTS (SELECT FROM changed)", args
	}
	return sb.String(), args
}

// conflictUpdate is what an insert does to the row already there with its
// key: take every column of the new one.
func conflictUpdate(t *runtime.Table) string {
	var set []string
	for _, i := range t.Copied() {
		// An ALWAYS identity can only be set to DEFAULT by an update.
		if !isKey(t, i) && t.Columns[i].Identity != 'a' {
			set = append(set, ident(t.Columns[i].Name)+" = EXCLUDED."+ident(t.Columns[i].Name))
		}
	}
	if len(set) == 0 {
		return "NOTHING"
	}
	return "UPDATE SET " + strings.Join(set, ", ")
}

// keyed reports whether rows are matched by key columns on the target.
func keyed(t *runtime.Table) bool { return len(t.Key) > 0 && t.Identity != runtime.IdentityNone }

func isKey(t *runtime.Table, i int) bool {
	for _, k := range t.Key {
		if k == i {
			return true
		}
	}
	return false
}

func keyList(t *runtime.Table) string {
	names := make([]string, len(t.Key))
	for j, k := range t.Key {
		names[j] = ident(t.Columns[k].Name)
	}
	return strings.Join(names, ", ")
}

// match returns the condition that finds the row: by key, or for a table
// without one (REPLICA IDENTITY FULL) one row equal to the full old image.
// The full image is compared in text form because some types (json, point)
// have no equality operator; the value is first read as the column's type so
// both sides print alike (char(n) pads, numeric keeps its scale).
func match(t *runtime.Table, row runtime.Row, arg func(col int) string) string {
	var conds []string
	if keyed(t) {
		for _, k := range t.Key {
			conds = append(conds, ident(t.Columns[k].Name)+" = "+arg(k))
		}
		return strings.Join(conds, " AND ")
	}
	for _, i := range t.Copied() {
		if row[i].Kind == runtime.Unchanged {
			continue
		}
		conds = append(conds, ident(t.Columns[i].Name)+"::text IS NOT DISTINCT FROM ("+arg(i)+"::"+t.Columns[i].Type+")::text")
	}
	return fmt.Sprintf("(tableoid, ctid) = (SELECT tableoid, ctid FROM %s WHERE %s LIMIT 1)", tableName(t), strings.Join(conds, " AND "))
}

// countsParam is the text of the counts a commit stores: "{}" for none, so
// the stored ones stay as they are.
func countsParam(counts map[string]runtime.Counts) []byte {
	if len(counts) == 0 {
		return []byte("{}")
	}
	return runtime.CountsJSON(counts)
}
