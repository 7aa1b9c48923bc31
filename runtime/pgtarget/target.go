package pgtarget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// Config says how to reach the target.
type Config struct {
	ConnString string
	// ControlSchema holds the control tables (ControlTablesSettings).
	ControlSchema string
	// Workers bounds the sessions used for loading and building indexes.
	Workers int
	// Fence is the fencing token of the lease the replicator holds for
	// Task (0: no lease, the replicator runs standalone). Every position
	// write checks it against the one stored with the position, so once a
	// newer replicator has claimed the target this one cannot commit.
	Fence int64
	Task  string
}

// Target is a PostgreSQL database written by the replicator.
type Target struct {
	cfg  Config
	pool *pgxpool.Pool

	claimMu sync.Mutex
	claimed bool // see claim

	failMu    sync.Mutex
	failReady bool // awsdms_validation_failures_v1 exists (ensureFailures)
}

var _ runtime.Target = (*Target)(nil)

// New connects to the target.
func New(ctx context.Context, cfg Config) (*Target, error) {
	pc, err := pgxpool.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("target connection settings: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	pc.MaxConns = int32(cfg.Workers) + 2
	pgtext.Apply(pc.ConnConfig.RuntimeParams)
	if cfg.Fence > 0 {
		// The name lets a successor find this replicator's sessions.
		pc.ConnConfig.RuntimeParams["application_name"] = sessionName(cfg.Task, cfg.Fence)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	return &Target{cfg: cfg, pool: pool}, nil
}

// ident is pgtext.Ident, short for the many statements here that name things.
var ident = pgtext.Ident

func tableName(t *runtime.Table) string { return ident(t.Schema, t.Name) }

func (t *Target) stateTable() string { return ident(t.cfg.ControlSchema, "awsdms_txn_state") }

// ensureControl creates the control schema and table.
func (t *Target) ensureControl(ctx context.Context) error {
	_, err := t.pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
  task_name text PRIMARY KEY,
  phase text NOT NULL,
  checkpoint text,
  checkpoint_timestamp timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  reload jsonb,
  fence bigint NOT NULL DEFAULT 0,
  counts jsonb)`, ident(t.cfg.ControlSchema), t.stateTable()))
	if err != nil {
		return fmt.Errorf("create the control table %s: %w", t.stateTable(), err)
	}
	// Control tables made by earlier versions lack the newer columns.
	for _, c := range []struct{ name, def string }{{"reload", "jsonb"}, {"fence", "bigint NOT NULL DEFAULT 0"}, {"counts", "jsonb"}} {
		var has bool
		err = t.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped)`, t.stateTable(), c.name).Scan(&has)
		if err == nil && !has {
			_, err = t.pool.Exec(ctx, "ALTER TABLE "+t.stateTable()+" ADD COLUMN IF NOT EXISTS "+c.name+" "+c.def)
		}
		if err != nil {
			return fmt.Errorf("add the %s column to the control table %s: %w", c.name, t.stateTable(), err)
		}
	}
	return t.ensureExceptions(ctx)
}

// State implements runtime.Target.
func (t *Target) State(ctx context.Context, task string) (runtime.State, error) {
	if err := t.ensureControl(ctx); err != nil {
		return runtime.State{}, err
	}
	if err := t.claim(ctx, task); err != nil {
		return runtime.State{}, err
	}
	var st runtime.State
	var cp *string
	var reload, counts []byte
	err := t.pool.QueryRow(ctx, "SELECT phase, checkpoint, reload, counts FROM "+t.stateTable()+" WHERE task_name = $1", task).Scan(&st.Phase, &cp, &reload, &counts)
	if errors.Is(err, pgx.ErrNoRows) {
		return runtime.State{}, nil
	}
	if err != nil {
		return st, err
	}
	if cp != nil {
		if st.Position, err = runtime.ParsePosition(*cp); err != nil {
			return st, fmt.Errorf("stored checkpoint: %w", err)
		}
	}
	if reload != nil {
		st.Reload = &runtime.Reload{}
		if err := json.Unmarshal(reload, st.Reload); err != nil {
			return st, fmt.Errorf("stored reload: %w", err)
		}
	}
	if st.Counts, err = runtime.ParseCounts(counts); err != nil {
		return st, err
	}
	if st.Suspended, err = t.suspended(ctx, t.pool, task); err != nil {
		return st, fmt.Errorf("read the suspended tables: %w", err)
	}
	return st, nil
}

// upsertState stores the position a target transaction commits, and the
// counts of the tables it changed over the stored ones.
const upsertState = `INSERT INTO %s AS s (task_name, phase, checkpoint, checkpoint_timestamp, updated_at, fence, counts)
VALUES ($1, $2, $3, $4, now(), $5, $6)
ON CONFLICT (task_name) DO UPDATE SET phase = EXCLUDED.phase, checkpoint = EXCLUDED.checkpoint,
  checkpoint_timestamp = EXCLUDED.checkpoint_timestamp, updated_at = now(), fence = EXCLUDED.fence,
  counts = coalesce(s.counts, '{}') || EXCLUDED.counts`

// SaveState implements runtime.Target.
func (t *Target) SaveState(ctx context.Context, task string, st runtime.State) error {
	if err := t.ensureControl(ctx); err != nil {
		return err
	}
	var cp *string
	if st.Position != nil {
		s := runtime.Checkpoint(st.Position)
		cp = &s
	}
	var reload []byte
	if st.Reload != nil {
		var err error
		if reload, err = json.Marshal(st.Reload); err != nil {
			return err
		}
	}
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it does nothing
	if t.cfg.Fence > 0 {
		if _, err := tx.Exec(ctx, t.fenceCheck(), task, t.cfg.Fence); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (task_name, phase, checkpoint, updated_at, reload, fence, counts)
VALUES ($1, $2, $3, now(), $4, $5, $6)
ON CONFLICT (task_name) DO UPDATE SET phase = EXCLUDED.phase, checkpoint = EXCLUDED.checkpoint,
  checkpoint_timestamp = NULL, updated_at = now(), reload = EXCLUDED.reload, fence = EXCLUDED.fence, counts = EXCLUDED.counts`, t.stateTable()),
		task, st.Phase, cp, reload, t.cfg.Fence, jsonText(runtime.CountsJSON(st.Counts)))
	if err != nil {
		return err
	}
	if err := t.saveSuspended(ctx, tx, task, st); err != nil {
		return fmt.Errorf("store the suspended tables: %w", err)
	}
	return tx.Commit(ctx)
}

// PrepareTables implements runtime.Target.
func (t *Target) PrepareTables(ctx context.Context, types []runtime.UserType, tables []*runtime.Table, mode string) error {
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	schemas := map[string]bool{}
	for _, ty := range types {
		schemas[ty.Schema] = true
	}
	for _, tb := range tables {
		schemas[tb.Schema] = true
		for _, q := range tb.Sequences {
			schemas[q.Schema] = true
		}
	}
	for s := range schemas {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(s)); err != nil {
			return fmt.Errorf("create schema %s: %w", s, err)
		}
	}
	for _, ty := range types {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", ident(ty.Schema, ty.Name)).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue // shared by other tables; never dropped
		}
		if _, err := conn.Exec(ctx, ty.Def); err != nil {
			return fmt.Errorf("create type %s.%s: %w", ty.Schema, ty.Name, err)
		}
	}
	for _, tb := range tables {
		if err := prepareTable(ctx, conn.Conn(), tb, mode); err != nil {
			return fmt.Errorf("prepare %s: %w", tableName(tb), err)
		}
	}
	return nil
}

func prepareTable(ctx context.Context, conn *pgx.Conn, tb *runtime.Table, mode string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", tableName(tb)).Scan(&exists); err != nil {
		return err
	}
	switch {
	case exists && mode == runtime.PrepTruncateBeforeLoad:
		_, err := conn.Exec(ctx, "TRUNCATE "+tableName(tb))
		return err
	case exists && mode == runtime.PrepDoNothing:
		return nil
	case exists:
		if _, err := conn.Exec(ctx, "DROP TABLE "+tableName(tb)+" CASCADE"); err != nil {
			return err
		}
	}
	for _, q := range tb.Sequences {
		if q.Identity {
			continue
		}
		name := ident(q.Schema, q.Name)
		sql := "DROP SEQUENCE IF EXISTS " + name + "; CREATE SEQUENCE " + name + " AS " + q.As + " " + q.Def
		if !q.Owned {
			// Shared with other tables: made once, never dropped.
			sql = "CREATE SEQUENCE IF NOT EXISTS " + name + " AS " + q.As + " " + q.Def
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create sequence %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, createTable(tb)); err != nil {
		return err
	}
	for _, p := range tb.Partitions {
		if err := createPartition(ctx, conn, tableName(tb), p); err != nil {
			return err
		}
	}
	for _, q := range tb.Sequences {
		if q.Identity || !q.Owned {
			continue
		}
		col := columnName(tb, q.Column)
		if col == "" {
			continue
		}
		seq := ident(q.Schema, q.Name)
		sql := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval(%s::regclass); ALTER SEQUENCE %s OWNED BY %s.%s",
			tableName(tb), ident(col), pgtext.Literal(seq), seq, tableName(tb), ident(col))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("attach sequence %s: %w", seq, err)
		}
	}
	return nil
}

// columnName returns the target name of a source column, "" if removed.
func columnName(tb *runtime.Table, source string) string {
	for _, c := range tb.Columns {
		if c.SourceName == source && !c.Removed {
			return c.Name
		}
	}
	return ""
}

func createTable(tb *runtime.Table) string {
	var cols []string
	for _, c := range tb.Columns {
		if c.Removed {
			continue
		}
		d := ident(c.Name) + " " + c.Type
		switch {
		case c.Generated != "":
			d += " GENERATED ALWAYS AS (" + c.Generated + ") STORED"
		case c.Identity == 'a':
			d += " GENERATED ALWAYS AS IDENTITY" + identityOptions(tb, c)
		case c.Identity == 'd':
			d += " GENERATED BY DEFAULT AS IDENTITY" + identityOptions(tb, c)
		case c.Default != "":
			d += " DEFAULT " + c.Default
		}
		if c.NotNull {
			d += " NOT NULL"
		}
		cols = append(cols, d)
	}
	sql := "CREATE TABLE " + tableName(tb) + " (\n  " + strings.Join(cols, ",\n  ") + "\n)"
	if tb.PartitionBy != "" {
		sql += " PARTITION BY " + tb.PartitionBy
	}
	return sql
}

// identityOptions returns the sequence options of an identity column, so the
// target's next value follows the source's START and INCREMENT.
func identityOptions(tb *runtime.Table, c runtime.Column) string {
	for _, q := range tb.Sequences {
		if q.Identity && q.Column == c.SourceName {
			return " (" + q.Def + ")"
		}
	}
	return ""
}

func createPartition(ctx context.Context, conn *pgx.Conn, parent string, p runtime.Partition) error {
	name := ident(p.Schema, p.Name)
	sql := "CREATE TABLE " + name + " PARTITION OF " + parent + " " + p.Bound
	if p.PartitionBy != "" {
		sql += " PARTITION BY " + p.PartitionBy
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create partition %s: %w", name, err)
	}
	for _, sub := range p.Partitions {
		if err := createPartition(ctx, conn, name, sub); err != nil {
			return err
		}
	}
	return nil
}

// ReadsBinary implements runtime.Target.
func (t *Target) ReadsBinary() bool { return true }

// Load implements runtime.Target. The session commits asynchronously: the
// rows become durable with the synchronous commit of the state that marks the
// load finished, and a crash before that reloads anyway.
func (t *Target) Load(ctx context.Context, tb *runtime.Table, f runtime.CopyFormat, r io.Reader) (int64, error) {
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		return 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET synchronous_commit") //nolint:errcheck // best effort; a broken session is discarded by the pool
	cols := make([]string, 0, len(tb.Columns))
	for _, i := range tb.Copied() {
		cols = append(cols, ident(tb.Columns[i].Name))
	}
	format := "text"
	if f == runtime.CopyBinary {
		format = "binary"
	}
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, r, fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FORMAT %s)", tableName(tb), strings.Join(cols, ", "), format))
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", tableName(tb), err)
	}
	return tag.RowsAffected(), nil
}

// FinishTables implements runtime.Target. Tables are finished in parallel; a
// table's primary key comes first, then its other constraints and indexes.
func (t *Target) FinishTables(ctx context.Context, tables []*runtime.Table, indexes bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.cfg.Workers)
	for _, tb := range tables {
		g.Go(func() error {
			conn, err := t.pool.Acquire(gctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, "SET maintenance_work_mem = '256MB'"); err != nil {
				return err
			}
			for _, c := range tb.Constraints {
				var exists bool
				err := conn.QueryRow(gctx, "SELECT exists(SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2)", tableName(tb), c.Name).Scan(&exists)
				if err != nil {
					return err
				}
				if exists {
					continue
				}
				if _, err := conn.Exec(gctx, "ALTER TABLE "+tableName(tb)+" ADD CONSTRAINT "+ident(c.Name)+" "+c.Def); err != nil {
					return fmt.Errorf("add constraint %s to %s: %w", c.Name, tableName(tb), err)
				}
			}
			for _, ix := range tb.Indexes {
				// Unique indexes are built even without secondary indexes:
				// one may be the key that updates and upserts match on.
				if !indexes && !strings.HasPrefix(ix.Def, "CREATE UNIQUE INDEX ") {
					continue
				}
				def := strings.Replace(ix.Def, runtime.TablePlaceholder, tableName(tb), 1)
				def = strings.Replace(def, " INDEX ", " INDEX IF NOT EXISTS ", 1)
				if _, err := conn.Exec(gctx, def); err != nil {
					return fmt.Errorf("create index %s on %s: %w", ix.Name, tableName(tb), err)
				}
			}
			// Freshly loaded tables have no statistics: without them the
			// planner may scan a small, fast-growing table instead of using
			// its key, and the apply statements slow down as it bloats.
			if _, err := conn.Exec(gctx, "ANALYZE "+tableName(tb)); err != nil {
				return fmt.Errorf("analyze %s: %w", tableName(tb), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// SetSequences implements runtime.Target.
func (t *Target) SetSequences(ctx context.Context, seqs []runtime.SequenceValue) error {
	for _, s := range seqs {
		var err error
		if s.Column != "" {
			col := columnName(s.Table, s.Column)
			if col == "" {
				continue
			}
			_, err = t.pool.Exec(ctx, "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)", tableName(s.Table), col, s.LastValue, s.IsCalled)
		} else {
			_, err = t.pool.Exec(ctx, "SELECT setval($1::regclass, $2, $3)", ident(s.Schema, s.Name), s.LastValue, s.IsCalled)
		}
		if err != nil {
			return fmt.Errorf("set sequence %s.%s: %w", s.Schema, s.Name, err)
		}
	}
	return nil
}

// Close implements runtime.Target.
func (t *Target) Close(context.Context) error {
	t.pool.Close()
	return nil
}

// jsonText passes JSON to a jsonb parameter as text, nil as NULL: pgx
// would send a []byte as bytea.
func jsonText(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
