package mysqltarget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
)

// Config is how to reach the target.
type Config struct {
	Server mysqlconn.Server
	// ControlSchema is the database of awsdms_txn_state; PostgreSQL's
	// "public" means awsdms_control here, as in DMS.
	ControlSchema string
	// Fence is the fencing token of the replicator's lease for Task (0:
	// standalone, no lease); see fence.go.
	Fence int64
	Task  string
}

// Target is a MySQL or MariaDB database that Sluice writes.
type Target struct {
	cfg Config

	mu   sync.Mutex
	cols map[*runtime.Table][]column
	// infile says whether the server takes LOAD DATA LOCAL INFILE; nil
	// until asked.
	infile *bool
}

// localInfile says whether the full load can use LOAD DATA LOCAL INFILE,
// which measured faster than multi-row INSERTs (README, Benchmarks); a
// server with local_infile off gets the INSERTs.
func (t *Target) localInfile(conn *client.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.infile == nil {
		on := false
		if r, err := conn.Execute("SELECT @@local_infile"); err == nil {
			n, _ := r.GetInt(0, 0)
			on = n == 1
		}
		t.infile = &on
	}
	return *t.infile
}

var _ runtime.Target = (*Target)(nil)

// New returns a target; it connects when first used.
func New(cfg Config) *Target {
	if cfg.ControlSchema == "" || cfg.ControlSchema == "public" {
		cfg.ControlSchema = "awsdms_control"
	}
	return &Target{cfg: cfg, cols: map[*runtime.Table][]column{}}
}

// connect opens a session that writes text as utf8mb4 and times as UTC, in
// a strict SQL mode, so a value that does not fit fails instead of being
// cut.
func (t *Target) connect(ctx context.Context) (*client.Conn, error) {
	conn, err := mysqlconn.Connect(ctx, t.cfg.Server, 0,
		func(c *client.Conn) error {
			// FOUND_ROWS: an update reports the rows it matched, not only
			// those it changed, so "no row" means no row.
			if err := c.SetCapability(mysql.CLIENT_FOUND_ROWS); err != nil {
				return err
			}
			return c.SetCapability(mysql.CLIENT_LOCAL_FILES)
		})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	for _, q := range []string{"SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'", "SET foreign_key_checks = 0"} {
		if _, err := conn.Execute(q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s on the target: %w", q, err)
		}
	}
	return conn, nil
}

var ident = mysqlconn.Quote

func tableName(t *runtime.Table) string { return ident(t.Schema, t.Name) }

func (t *Target) stateTable() string { return ident(t.cfg.ControlSchema, "awsdms_txn_state") }

func (t *Target) ensureControl(conn *client.Conn) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + ident(t.cfg.ControlSchema),
		"CREATE TABLE IF NOT EXISTS " + t.stateTable() + ` (
		  task_name varchar(255) PRIMARY KEY, phase varchar(32) NOT NULL, checkpoint text,
		  checkpoint_timestamp datetime(6), updated_at datetime(6) NOT NULL, reload json, counts json)`,
	} {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("create the control table %s: %w", t.stateTable(), err)
		}
	}
	// Control tables made by earlier versions lack the newer columns.
	for _, c := range []struct{ name, def string }{{"fence", "bigint NOT NULL DEFAULT 0"}, {"counts", "json"}} {
		if err := t.ensureColumn(conn, c.name, c.def); err != nil {
			return fmt.Errorf("add the %s column to the control table %s: %w", c.name, t.stateTable(), err)
		}
	}
	return t.ensureExceptions(conn)
}

// columns returns the target columns of tb, computing them once.
func (t *Target) columns(tb *runtime.Table) ([]column, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cs, ok := t.cols[tb]; ok {
		return cs, nil
	}
	cs := make([]column, len(tb.Columns))
	for i, c := range tb.Columns {
		if c.Removed {
			continue
		}
		tc, err := targetColumn(tb, c)
		if err != nil {
			return nil, err
		}
		cs[i] = tc
	}
	t.cols[tb] = cs
	return cs, nil
}

// State implements runtime.Target.
func (t *Target) State(ctx context.Context, task string) (runtime.State, error) {
	conn, err := t.connect(ctx)
	if err != nil {
		return runtime.State{}, err
	}
	defer conn.Close()
	if err := t.ensureControl(conn); err != nil {
		return runtime.State{}, err
	}
	if err := t.claim(conn, task); err != nil {
		return runtime.State{}, err
	}
	r, err := conn.Execute("SELECT phase, checkpoint, reload, counts FROM "+t.stateTable()+" WHERE task_name = ?", task)
	if err != nil {
		return runtime.State{}, err
	}
	var st runtime.State
	if r.RowNumber() == 0 {
		return st, nil
	}
	phase, _ := r.GetString(0, 0)
	st.Phase = runtime.Phase(phase)
	if cp, _ := r.GetString(0, 1); cp != "" {
		if st.Position, err = runtime.ParsePosition(cp); err != nil {
			return st, fmt.Errorf("stored checkpoint: %w", err)
		}
	}
	if rl, _ := r.GetString(0, 2); rl != "" {
		st.Reload = &runtime.Reload{}
		if err := st.Reload.UnmarshalJSON([]byte(rl)); err != nil {
			return st, fmt.Errorf("stored reload: %w", err)
		}
	}
	counts, _ := r.GetString(0, 3)
	if st.Counts, err = runtime.ParseCounts([]byte(counts)); err != nil {
		return st, err
	}
	if st.Suspended, err = t.suspended(conn, task); err != nil {
		return st, fmt.Errorf("read the suspended tables: %w", err)
	}
	return st, nil
}

// upsertState is the statement that stores a state row: all of st for
// SaveState, or, for a target transaction's commit, its position with the
// counts of the tables it changed over the stored ones (the reload and
// suspensions stay).
func (t *Target) upsertState(b *strings.Builder, task string, st runtime.State, commit bool) error {
	b.WriteString("INSERT INTO " + t.stateTable() + " (task_name, phase, checkpoint, updated_at, fence, reload, counts) VALUES (")
	mysqlconn.WriteLiteral(b, task)
	b.WriteString(", ")
	mysqlconn.WriteLiteral(b, string(st.Phase))
	b.WriteString(", ")
	if st.Position != nil {
		mysqlconn.WriteLiteral(b, runtime.Checkpoint(st.Position))
	} else {
		b.WriteString("NULL")
	}
	b.WriteString(", UTC_TIMESTAMP(6), " + strconv.FormatInt(t.cfg.Fence, 10) + ", ")
	if st.Reload != nil {
		j, err := st.Reload.MarshalJSON()
		if err != nil {
			return err
		}
		mysqlconn.WriteLiteral(b, string(j))
	} else {
		b.WriteString("NULL")
	}
	b.WriteString(", ")
	switch counts := runtime.CountsJSON(st.Counts); {
	case counts != nil:
		mysqlconn.WriteLiteral(b, string(counts))
	case commit:
		b.WriteString("'{}'")
	default:
		b.WriteString("NULL")
	}
	b.WriteString(") ON DUPLICATE KEY UPDATE phase = VALUES(phase), checkpoint = VALUES(checkpoint), updated_at = VALUES(updated_at), fence = VALUES(fence)")
	if commit {
		b.WriteString(", counts = JSON_MERGE_PATCH(COALESCE(counts, '{}'), VALUES(counts))")
	} else {
		b.WriteString(", reload = VALUES(reload), counts = VALUES(counts)")
	}
	return nil
}

// SaveState implements runtime.Target.
func (t *Target) SaveState(ctx context.Context, task string, st runtime.State) error {
	conn, err := t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := t.ensureControl(conn); err != nil {
		return err
	}
	var b strings.Builder
	if err := t.upsertState(&b, task, st, false); err != nil {
		return err
	}
	if _, err := conn.Execute("BEGIN"); err != nil {
		return err
	}
	if t.cfg.Fence > 0 {
		err = t.checkFence(conn, task)
	}
	for _, q := range append([]string{b.String()}, t.saveSuspended(task, st)...) {
		if err == nil {
			_, err = conn.Execute(q)
		}
	}
	if err != nil {
		_, _ = conn.Execute("ROLLBACK")
		return err
	}
	_, err = conn.Execute("COMMIT")
	return err
}

// PrepareTables implements runtime.Target. Tables are created with their
// primary key (InnoDB keeps rows in key order, so it cannot come later);
// types are not created: MySQL has none.
func (t *Target) PrepareTables(ctx context.Context, _ []runtime.UserType, tables []*runtime.Table, mode string) error {
	conn, err := t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	schemas := map[string]bool{}
	for _, tb := range tables {
		if !schemas[tb.Schema] {
			schemas[tb.Schema] = true
			if _, err := conn.Execute("CREATE DATABASE IF NOT EXISTS " + ident(tb.Schema) + " CHARACTER SET utf8mb4"); err != nil {
				return fmt.Errorf("create database %s: %w", tb.Schema, err)
			}
		}
		r, err := conn.Execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", tb.Schema, tb.Name)
		if err != nil {
			return err
		}
		n, _ := r.GetInt(0, 0)
		exists := n > 0
		switch {
		case exists && mode == runtime.PrepTruncateBeforeLoad:
			if _, err := conn.Execute("TRUNCATE TABLE " + tableName(tb)); err != nil {
				return fmt.Errorf("truncate %s: %w", tableName(tb), err)
			}
			continue
		case exists && mode == runtime.PrepDoNothing:
			continue
		case exists:
			if _, err := conn.Execute("DROP TABLE " + tableName(tb)); err != nil {
				return fmt.Errorf("drop %s: %w", tableName(tb), err)
			}
		}
		sql, err := t.createTable(tb)
		if err != nil {
			return err
		}
		if _, err := conn.Execute(sql); err != nil {
			return fmt.Errorf("create %s: %w", tableName(tb), err)
		}
	}
	return nil
}

func (t *Target) createTable(tb *runtime.Table) (string, error) {
	cols, err := t.columns(tb)
	if err != nil {
		return "", err
	}
	var defs []string
	for i, c := range tb.Columns {
		if c.Removed {
			continue
		}
		d := ident(c.Name) + " " + cols[i].decl
		if c.NotNull {
			d += " NOT NULL"
		}
		if c.Identity != 0 && len(tb.Key) == 1 && tb.Key[0] == i {
			d += " AUTO_INCREMENT"
		}
		defs = append(defs, d)
	}
	if len(tb.Key) > 0 && tb.Identity == runtime.IdentityKey {
		names := make([]string, len(tb.Key))
		for j, k := range tb.Key {
			names[j] = ident(tb.Columns[k].Name)
		}
		kind := "PRIMARY KEY"
		if !tb.HasPrimaryKey {
			kind = "UNIQUE KEY"
		}
		defs = append(defs, kind+" ("+strings.Join(names, ", ")+")")
	}
	return "CREATE TABLE " + tableName(tb) + " (\n  " + strings.Join(defs, ",\n  ") + "\n) DEFAULT CHARSET = utf8mb4", nil
}

// insertBatch is how many rows one INSERT of the full load carries; the
// statement also stops growing past insertBytes.
const (
	insertBatch = 1000
	insertBytes = 4 << 20
)

// ReadsBinary implements runtime.Target: MySQL has no reader of
// PostgreSQL's binary COPY format.
func (t *Target) ReadsBinary() bool { return false }

// Load implements runtime.Target: COPY text rows go in with LOAD DATA LOCAL
// INFILE, or as multi-row INSERTs in one transaction per chunk where the
// server does not allow it.
func (t *Target) Load(ctx context.Context, tb *runtime.Table, f runtime.CopyFormat, r io.Reader) (int64, error) {
	if f != runtime.CopyText {
		return 0, errors.New("a MySQL target reads COPY text only")
	}
	cols, err := t.columns(tb)
	if err != nil {
		return 0, err
	}
	conn, err := t.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if t.localInfile(conn) {
		return loadInfile(ctx, conn, tb, cols, r)
	}
	copied := tb.Copied()
	names := make([]string, len(copied))
	for i, c := range copied {
		names[i] = ident(tb.Columns[c].Name)
	}
	head := "INSERT INTO " + tableName(tb) + " (" + strings.Join(names, ", ") + ") VALUES "
	if _, err := conn.Execute("BEGIN"); err != nil {
		return 0, err
	}
	var b strings.Builder
	var inStmt int64
	flush := func() error {
		if inStmt == 0 {
			return nil
		}
		if _, err := conn.Execute(b.String()); err != nil {
			return fmt.Errorf("insert into %s: %w", tableName(tb), err)
		}
		b.Reset()
		inStmt = 0
		return nil
	}
	rows, err := eachRow(ctx, r, tb, func(vals []runtime.Value) error {
		if inStmt == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, v := range vals {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := literal(&b, cols[copied[i]], v); err != nil {
				return fmt.Errorf("%s.%s: %w", tb.QualifiedSource(), tb.Columns[copied[i]].SourceName, err)
			}
		}
		b.WriteByte(')')
		inStmt++
		if inStmt >= insertBatch || b.Len() >= insertBytes {
			return flush()
		}
		return nil
	})
	if err != nil {
		return rows, err
	}
	if err := flush(); err != nil {
		return rows, err
	}
	_, err = conn.Execute("COMMIT")
	return rows, err
}

// FinishTables implements runtime.Target. The key came with the table;
// other indexes and constraints are in PostgreSQL's syntax, so they are
// not built on MySQL (DMS builds none either).
func (t *Target) FinishTables(context.Context, []*runtime.Table, bool) error { return nil }

// SetSequences implements runtime.Target: an AUTO_INCREMENT column goes on
// after the source's counter.
func (t *Target) SetSequences(ctx context.Context, seqs []runtime.SequenceValue) error {
	conn, err := t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range seqs {
		if s.Table == nil {
			continue
		}
		next := s.LastValue
		if s.IsCalled {
			next++
		}
		if _, err := conn.Execute("ALTER TABLE " + tableName(s.Table) + " AUTO_INCREMENT = " + strconv.FormatInt(next, 10)); err != nil {
			var me *mysql.MyError
			if errors.As(err, &me) {
				continue // no AUTO_INCREMENT column: nothing to carry
			}
			return err
		}
	}
	return nil
}

// Close implements runtime.Target.
func (t *Target) Close(context.Context) error { return nil }
