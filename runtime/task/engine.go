package task

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mapping"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/mysqlsource"
	"github.com/sluicedb/sluice/runtime/mysqltarget"
	"github.com/sluicedb/sluice/runtime/pgsource"
	"github.com/sluicedb/sluice/runtime/pgtarget"
)

// Engine is what Sluice knows of one family of database engines, said
// once: the DMS engine names it answers to and how the control plane
// reaches it before a replicator runs (connection tests, the analysis),
// and which source and target it builds.
type Engine struct {
	// Family is FamilyPostgres or FamilyMySQL (MySQL, MariaDB, Aurora
	// MySQL: one protocol, one binlog).
	Family string
	// Names are the DMS EngineName values, each with its display name.
	Names map[string]string
	// NeedsDatabase says an endpoint must name its DatabaseName; MySQL's
	// table mappings name the databases as schemas instead.
	NeedsDatabase bool
	// StartsAtTime says a change stream can start from a time
	// (CdcStartTime): a binlog can be searched by time, a WAL cannot.
	StartsAtTime bool
	// source builds the task's source, not yet connected.
	source func(t *Task, settings runtime.Settings, rules *mapping.Rules, log *slog.Logger) taskSource
	// target builds the task's target on e.
	target func(ctx context.Context, e *Endpoint, c targetConfig) (runtime.Target, error)
	// ping connects as the replicator will and pings.
	ping func(ctx context.Context, e *Endpoint, timeout time.Duration) error
	// logOffset opens a reader of the source's write-ahead log (WAL, binlog)
	// position in bytes; file changes when a binlog rotates, so offsets of
	// different files are not subtracted.
	logOffset func(ctx context.Context, e *Endpoint) (read func() (file string, off int64, err error), closeFn func(), err error)
	// tableBytes is the size on disk of tables, or ok false when the
	// catalog's estimate (runtime.Table.Pages) is the best there is.
	tableBytes func(ctx context.Context, e *Endpoint, tables []*runtime.Table) (n int64, ok bool, err error)
}

// slotName is the PostgreSQL slot of t's replication: the endpoint's
// SlotName, else one named after the config identifier, which is unique.
func slotName(t *Task) string {
	if ps := t.SourceEndpoint.PostgreSQLSettings; ps != nil && ps.SlotName != "" {
		return ps.SlotName
	}
	return "sluice_" + sanitize(t.ReplicationConfigIdentifier)
}

// The engine families.
const (
	FamilyPostgres = "postgres"
	FamilyMySQL    = "mysql"
)

// Engines are the engine families Sluice replicates, PostgreSQL first.
var Engines = []*Engine{postgresEngine, mysqlEngine}

var postgresEngine = &Engine{
	Family:        FamilyPostgres,
	Names:         map[string]string{"postgres": "PostgreSQL", "aurora-postgresql": "Amazon Aurora PostgreSQL"},
	NeedsDatabase: true,
	source: func(t *Task, settings runtime.Settings, _ *mapping.Rules, _ *slog.Logger) taskSource {
		e := t.SourceEndpoint
		return pgsource.New(pgsource.Config{
			ConnString: e.ConnString(), User: e.Username,
			Slot: slotName(t), Publication: "sluice_" + sanitize(t.ReplicationConfigIdentifier),
			SetReplicaIdentityFull: settings.SluiceSettings.SetReplicaIdentityFull,
			TakeOver:               t.Fence > 0,
			Heartbeat:              heartbeat(t),
		})
	},
	target: func(ctx context.Context, e *Endpoint, c targetConfig) (runtime.Target, error) {
		return pgtarget.New(ctx, pgtarget.Config{
			ConnString: e.ConnString(), ControlSchema: c.controlSchema,
			Workers: c.workers, Fence: c.fence, Task: c.task,
		})
	},
	ping: func(ctx context.Context, e *Endpoint, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, e.ConnString())
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	},
	logOffset: func(ctx context.Context, e *Endpoint) (func() (string, int64, error), func(), error) {
		conn, err := pgx.Connect(ctx, e.ConnString())
		if err != nil {
			return nil, nil, err
		}
		read := func() (string, int64, error) {
			var lsn int64
			err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&lsn)
			return "", lsn, err
		}
		return read, func() { conn.Close(context.WithoutCancel(ctx)) }, nil
	},
	tableBytes: func(ctx context.Context, e *Endpoint, tables []*runtime.Table) (int64, bool, error) {
		// relpages stays 0 until a table is vacuumed or analyzed: ask for
		// the size on disk, TOAST included.
		conn, err := pgx.Connect(ctx, e.ConnString())
		if err != nil {
			return 0, false, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		schemas, names := make([]string, len(tables)), make([]string, len(tables))
		for i, t := range tables {
			schemas[i], names[i] = t.SourceSchema, t.SourceName
		}
		var n int64
		err = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_table_size(c.oid)), 0)::bigint
			FROM unnest($1::text[], $2::text[]) AS t(s, n)
			JOIN pg_namespace ns ON ns.nspname = t.s JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = t.n`, schemas, names).Scan(&n)
		return n, err == nil, err
	},
}

var mysqlEngine = &Engine{
	Family:       FamilyMySQL,
	Names:        map[string]string{"mysql": "MySQL", "mariadb": "MariaDB", "aurora": "Amazon Aurora MySQL"},
	StartsAtTime: true,
	source: func(t *Task, settings runtime.Settings, rules *mapping.Rules, log *slog.Logger) taskSource {
		e := t.SourceEndpoint
		id := serverID(t.ReplicationConfigIdentifier)
		if ms := e.MySQLSettings; ms != nil && ms.ServerId != 0 {
			id = ms.ServerId
		}
		return mysqlsource.New(mysqlsource.Config{
			Server:   e.MySQLServer(),
			ServerID: id, ZeroDateAsNull: settings.SluiceSettings.ZeroDateAsNull, Log: log,
			Selected: rules.Selected,
		})
	},
	target: func(_ context.Context, e *Endpoint, c targetConfig) (runtime.Target, error) {
		return mysqltarget.New(mysqltarget.Config{
			Server: e.MySQLServer(), ControlSchema: c.controlSchema,
			Fence: c.fence, Task: c.task,
		}), nil
	},
	ping: func(ctx context.Context, e *Endpoint, timeout time.Duration) error {
		conn, err := mysqlconn.Connect(ctx, e.MySQLServer(), timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Ping()
	},
	logOffset: func(ctx context.Context, e *Endpoint) (func() (string, int64, error), func(), error) {
		conn, err := mysqlconn.Connect(ctx, e.MySQLServer(), 10*time.Second)
		if err != nil {
			return nil, nil, err
		}
		read := func() (string, int64, error) {
			p, err := mysqlsource.BinlogPosition(conn)
			return p.File, int64(p.Pos), err
		}
		return read, func() { conn.Close() }, nil
	},
	tableBytes: func(context.Context, *Endpoint, []*runtime.Table) (int64, bool, error) {
		// information_schema's data_length is what Pages holds already.
		return 0, false, nil
	},
}

// targetConfig is what a target is built from besides its endpoint.
type targetConfig struct {
	controlSchema string
	// workers is the full load's parallel sessions (PostgreSQL; MySQL
	// opens one per table being loaded).
	workers int
	fence   int64
	task    string
}

// EngineOf returns the family of a DMS engine name.
func EngineOf(name string) (*Engine, error) {
	if name == "" {
		return nil, fmt.Errorf("EngineName is missing: use one of %s", strings.Join(EngineNames(), ", "))
	}
	for _, e := range Engines {
		if _, ok := e.Names[name]; ok {
			return e, nil
		}
	}
	return nil, fmt.Errorf("EngineName %q is not one Sluice replicates: use one of %s", name, strings.Join(EngineNames(), ", "))
}

// EngineNames lists every DMS engine name Sluice takes, sorted.
func EngineNames() []string {
	var out []string
	for _, e := range Engines {
		for n := range e.Names {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Ping connects to the endpoint as the replicator will and pings it,
// within timeout.
func (e *Endpoint) Ping(ctx context.Context, timeout time.Duration) error {
	eng, err := EngineOf(e.EngineName)
	if err != nil {
		return err
	}
	return eng.ping(ctx, e, timeout)
}

// ChangeRate is how many bytes of WAL or binlog the source writes a
// second, from its position read sample apart.
func (e *Endpoint) ChangeRate(ctx context.Context, sample time.Duration) (float64, error) {
	eng, err := EngineOf(e.EngineName)
	if err != nil {
		return 0, err
	}
	read, closeFn, err := eng.logOffset(ctx, e)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	f1, a, err := read()
	if err != nil {
		return 0, err
	}
	began := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(sample):
	}
	f2, b, err := read()
	if err != nil {
		return 0, err
	}
	if f2 != f1 {
		// A rotation in the window: count the new file's offset only, an
		// underestimate.
		a = 0
	}
	return float64(max(b-a, 0)) / time.Since(began).Seconds(), nil
}

// TableBytes is the size of the tables on the endpoint: on disk where the
// engine can say, else from the catalog's page estimate.
func (e *Endpoint) TableBytes(ctx context.Context, tables []*runtime.Table) (int64, error) {
	eng, err := EngineOf(e.EngineName)
	if err != nil {
		return 0, err
	}
	if len(tables) == 0 {
		return 0, nil
	}
	n, ok, err := eng.tableBytes(ctx, e, tables)
	if err != nil {
		return 0, err
	}
	if ok {
		return n, nil
	}
	for _, t := range tables {
		n += max(t.Pages, 0) * 8192
	}
	return n, nil
}
