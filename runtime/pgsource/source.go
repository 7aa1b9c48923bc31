package pgsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// Config says how to reach the source and what to name the capture.
type Config struct {
	// ConnString is a libpq connection string or URL for a normal session.
	ConnString string
	// User is the login, for messages that tell how to grant privileges.
	User string
	// Slot and Publication name the capture; Publication gets an "_ins"
	// sibling for tables whose updates and deletes cannot be captured.
	Slot, Publication string
	// SetReplicaIdentityFull allows ALTER TABLE ... REPLICA IDENTITY FULL on
	// tables with neither a primary key nor a replica identity.
	SetReplicaIdentityFull bool
	// TakeOver says the replicator holds the replication's lease, so a
	// session still holding the slot is a predecessor's, to be ended.
	TakeOver bool
	// Heartbeat, when positive, is how often the stream writes a record
	// to the source's WAL (DMS's HeartbeatEnable and HeartbeatFrequency).
	Heartbeat time.Duration
}

// Source is a PostgreSQL database read through logical replication.
type Source struct {
	cfg Config

	oids      map[*runtime.Table]uint32
	qualified map[*runtime.Table]string
	needFull  []*runtime.Table
	// unlogged tables are loaded but not captured: PostgreSQL does not log
	// their changes, and refuses them in publications.
	unlogged map[*runtime.Table]bool

	// The snapshot: exported by the slot's replication connection (or by a
	// plain transaction for a full load alone) and imported by each copier.
	snapMu    sync.Mutex
	snapName  string
	exporter  *pgconn.PgConn
	exportTx  *pgx.Conn
	copiers   chan *pgx.Conn
	allCopier []*pgx.Conn

	acked atomic.Uint64 // highest LSN the target has durably applied
}

var (
	_ runtime.Source  = (*Source)(nil)
	_ runtime.Acker   = (*Source)(nil)
	_ runtime.Checker = (*Source)(nil)
)

// New returns a source; it connects when first used.
func New(cfg Config) *Source {
	return &Source{cfg: cfg, oids: map[*runtime.Table]uint32{}, qualified: map[*runtime.Table]string{}, unlogged: map[*runtime.Table]bool{}}
}

// connect opens a normal session whose search_path is empty, so the catalog
// functions qualify every name they print.
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("source connection settings: %w", err)
	}
	pgtext.Apply(cfg.RuntimeParams)
	cfg.RuntimeParams["search_path"] = ""
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	return conn, nil
}

// connectReplication opens a logical replication session; a paced one
// reads a busy stream in paces (see pace).
func (s *Source) connectReplication(ctx context.Context, paced bool) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(s.cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("source connection settings: %w", err)
	}
	if dial := cfg.DialFunc; paced {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return pace(c), nil
		}
	}
	pgtext.Apply(cfg.RuntimeParams)
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(fmt.Errorf("open a replication connection to the source: %w", err), s.cfg.Slot)
	}
	return conn, nil
}

// Prepare implements runtime.Source.
func (s *Source) Prepare(ctx context.Context, tables []*runtime.Table, opts runtime.PrepareOptions) (runtime.Position, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if !opts.FromTime.IsZero() {
		return nil, errors.New("CdcStartTime is not supported for a PostgreSQL source: no position can be found from a time; give CdcStartPosition as an LSN (16/B374D848) or a checkpoint")
	}
	if !opts.Capture {
		if opts.Snapshot {
			return nil, s.exportPlainSnapshot(ctx)
		}
		return nil, nil
	}
	if err := checkCapture(ctx, conn, s.cfg.User); err != nil {
		return nil, err
	}
	for _, t := range s.needFull {
		if _, err := conn.Exec(ctx, "ALTER TABLE "+s.qualified[t]+" REPLICA IDENTITY FULL"); err != nil {
			return nil, fmt.Errorf("set REPLICA IDENTITY FULL on %s (allowed by SetReplicaIdentityFull): %w", t.QualifiedSource(), err)
		}
	}
	if err := s.publish(ctx, conn, tables); err != nil {
		return nil, err
	}
	var exists bool
	var confirmed, walStatus *string
	err = conn.QueryRow(ctx, `SELECT true, confirmed_flush_lsn::text, wal_status FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&exists, &confirmed, &walStatus)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("look up slot %s: %w", s.cfg.Slot, err)
	}
	if !exists && opts.Resume {
		return nil, fmt.Errorf("%w: slot %q does not exist on the source (was it dropped?). Changes after the last checkpoint cannot be recovered: restart the replication with reload-target", ErrSlotMissing, s.cfg.Slot)
	}
	if exists && opts.Resume && walStatus != nil && *walStatus == "lost" {
		return nil, fmt.Errorf("%w: the source invalidated slot %q (wal_status lost: it held more WAL than max_slot_wal_keep_size), so the changes after the last checkpoint are gone: restart the replication with reload-target", ErrSlotMissing, s.cfg.Slot)
	}
	if exists && !opts.Snapshot {
		if confirmed == nil {
			return nil, fmt.Errorf("slot %s exists but is not a logical slot that has been confirmed: drop it or choose another slot name", s.cfg.Slot)
		}
		return runtime.ParseLSN(*confirmed)
	}
	if exists {
		// A new full load needs a new snapshot, which only a new slot exports.
		err := s.whileSlotBusy(ctx, func() error {
			_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s.cfg.Slot)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("drop the old slot %s before a new full load (is a replicator still using it?): %w", s.cfg.Slot, err)
		}
	}
	repl, err := s.connectReplication(ctx, false)
	if err != nil {
		return nil, err
	}
	action := "NOEXPORT_SNAPSHOT"
	if opts.Snapshot {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: action})
	if err != nil {
		repl.Close(ctx)
		return nil, classify(fmt.Errorf("create replication slot %s: %w", s.cfg.Slot, err), s.cfg.Slot)
	}
	start, err := runtime.ParseLSN(res.ConsistentPoint)
	if err != nil {
		repl.Close(ctx)
		return nil, err
	}
	if !opts.Snapshot {
		repl.Close(ctx)
		return start, nil
	}
	// The snapshot lives as long as this connection stays idle.
	s.snapMu.Lock()
	s.exporter, s.snapName = repl, res.SnapshotName
	s.snapMu.Unlock()
	return start, nil
}

// Snapshot implements runtime.Source. A temporary slot, made only for its
// exported snapshot, gives a snapshot whose position compares with the
// commit positions of the replication's own slot, which stays as it is.
// PostgreSQL drops the slot when the exporting session ends.
func (s *Source) Snapshot(ctx context.Context) (runtime.Position, error) {
	name := s.cfg.Slot
	if len(name) > 56 {
		name = name[:56]
	}
	repl, snap, at, err := s.slotSnapshot(ctx, name+"_reload")
	if err != nil {
		return nil, err
	}
	s.snapMu.Lock()
	s.exporter, s.snapName = repl, snap
	s.snapMu.Unlock()
	return at, nil
}

// slotSnapshot creates the temporary slot named slot on a replication
// session of its own and returns the session (closing it drops the slot),
// the exported snapshot's name and its position.
func (s *Source) slotSnapshot(ctx context.Context, slot string) (*pgconn.PgConn, string, runtime.LSN, error) {
	repl, err := s.connectReplication(ctx, false)
	if err != nil {
		return nil, "", 0, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		repl.Close(ctx)
		return nil, "", 0, classify(fmt.Errorf("create the temporary slot %s for a snapshot: %w", slot, err), slot)
	}
	at, err := runtime.ParseLSN(res.ConsistentPoint)
	if err != nil {
		repl.Close(ctx)
		return nil, "", 0, err
	}
	return repl, res.SnapshotName, at, nil
}

// exportPlainSnapshot exports a snapshot from an open transaction, for a full
// load that no change stream follows.
func (s *Source) exportPlainSnapshot(ctx context.Context) error {
	conn, name, err := s.plainSnapshot(ctx)
	if err != nil {
		return err
	}
	s.snapMu.Lock()
	s.exportTx, s.snapName = conn, name
	s.snapMu.Unlock()
	return nil
}

// plainSnapshot exports a snapshot, without a position, from a
// transaction on a session of its own, which holds it until it is closed.
func (s *Source) plainSnapshot(ctx context.Context) (*pgx.Conn, string, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, "", err
	}
	var name string
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(ctx)
		return nil, "", err
	}
	if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&name); err != nil {
		conn.Close(ctx)
		return nil, "", fmt.Errorf("export a snapshot: %w", err)
	}
	return conn, name, nil
}

// Check implements runtime.Checker.
func (s *Source) Check(ctx context.Context) []string {
	conn, err := s.connect(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	defer conn.Close(ctx)
	var problems []string
	if err := checkCapture(ctx, conn, s.cfg.User); err != nil {
		problems = append(problems, err.Error())
	}
	var free, max int
	var ours bool
	err = conn.QueryRow(ctx, `SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int,
		current_setting('max_replication_slots')::int, EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, s.cfg.Slot).Scan(&free, &max, &ours)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("count the source's replication slots: %v", err))
	case !ours && free < 1:
		problems = append(problems, fmt.Sprintf("the source has no free replication slot (max_replication_slots = %d, all in use). Fix: drop slots nothing reads (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active), or raise max_replication_slots and restart PostgreSQL", max))
	}
	return problems
}

// checkCapture verifies that the source can decode changes, with the fix.
func checkCapture(ctx context.Context, conn *pgx.Conn, user string) error {
	var level string
	var canReplicate bool
	err := conn.QueryRow(ctx, `SELECT current_setting('wal_level'),
	  (SELECT rolsuper OR rolreplication OR pg_has_role(current_user, 'rds_replication', 'member') FROM pg_roles WHERE rolname = current_user)`).Scan(&level, &canReplicate)
	if err != nil {
		// rds_replication does not exist outside RDS; ask without it.
		err = conn.QueryRow(ctx, `SELECT current_setting('wal_level'), (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user)`).Scan(&level, &canReplicate)
	}
	if err != nil {
		return fmt.Errorf("check the source's replication settings: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w (it is %q). Fix: ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL (on RDS: set rds.logical_replication = 1 in the parameter group)", ErrWalLevel, level)
	}
	if !canReplicate {
		return fmt.Errorf("%w: role %s has neither SUPERUSER nor REPLICATION. Fix: ALTER ROLE %s REPLICATION", ErrNoReplication, user, quoteIdent(user))
	}
	return nil
}

// publish makes the publications list exactly the replicated tables: one for
// tables whose every change can be captured, one for inserts only.
func (s *Source) publish(ctx context.Context, conn *pgx.Conn, tables []*runtime.Table) error {
	var full, insertOnly []string
	for _, t := range tables {
		if s.unlogged[t] {
			continue
		}
		if t.Identity == runtime.IdentityNone {
			insertOnly = append(insertOnly, s.qualified[t])
		} else {
			full = append(full, s.qualified[t])
		}
	}
	for _, p := range []struct {
		name, publish string
		tables        []string
	}{
		{s.cfg.Publication, "insert, update, delete, truncate", full},
		{s.cfg.Publication + "_ins", "insert, truncate", insertOnly},
	} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT exists(SELECT 1 FROM pg_publication WHERE pubname = $1)`, p.name).Scan(&exists); err != nil {
			return err
		}
		q := quoteIdent(p.name)
		var sql string
		switch {
		case len(p.tables) == 0 && exists:
			sql = "DROP PUBLICATION " + q
		case len(p.tables) == 0:
			continue
		case exists:
			sql = "ALTER PUBLICATION " + q + " SET TABLE " + strings.Join(p.tables, ", ")
		default:
			sql = fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = '%s', publish_via_partition_root = true)", q, strings.Join(p.tables, ", "), p.publish)
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("set up publication %s (the source user must own the tables or be superuser): %w", p.name, err)
		}
	}
	return nil
}

// publications lists the publication names the stream reads.
func (s *Source) publications(tables []*runtime.Table) []string {
	var full, ins bool
	for _, t := range tables {
		if s.unlogged[t] {
			continue
		}
		if t.Identity == runtime.IdentityNone {
			ins = true
		} else {
			full = true
		}
	}
	var out []string
	if full {
		out = append(out, s.cfg.Publication)
	}
	if ins {
		out = append(out, s.cfg.Publication+"_ins")
	}
	return out
}

// Chunks implements runtime.Source. A partitioned table is copied one leaf
// partition at a time; a large plain table in ranges of heap pages (a TID
// range scan reads just those pages).
func (s *Source) Chunks(ctx context.Context, t *runtime.Table, chunkPages int64) ([]runtime.Chunk, error) {
	if t.PartitionBy != "" {
		var leaves []string
		var walk func(ps []runtime.Partition)
		walk = func(ps []runtime.Partition) {
			for _, p := range ps {
				if p.PartitionBy != "" {
					walk(p.Partitions)
				} else {
					leaves = append(leaves, quoteIdent(p.SourceSchema)+"."+quoteIdent(p.SourceName))
				}
			}
		}
		walk(t.Partitions)
		out := make([]runtime.Chunk, len(leaves))
		for i, l := range leaves {
			out[i] = runtime.Chunk{Table: t, Index: i, Count: len(leaves), Part: l}
		}
		return out, nil
	}
	n := int64(1)
	if chunkPages > 0 && t.Pages > chunkPages {
		n = (t.Pages + chunkPages - 1) / chunkPages
	}
	out := make([]runtime.Chunk, n)
	for i := range n {
		out[i] = runtime.Chunk{Table: t, Index: int(i), Count: int(n), Lo: i * chunkPages, Hi: (i + 1) * chunkPages}
	}
	return out, nil
}

// Copy implements runtime.Source.
func (s *Source) Copy(ctx context.Context, c runtime.Chunk, f runtime.CopyFormat, w io.Writer) error {
	conn, err := s.copier(ctx)
	if err != nil {
		return err
	}
	defer func() { s.copiers <- conn }()
	cols := make([]string, 0, len(c.Table.Columns))
	for _, i := range c.Table.Copied() {
		cols = append(cols, quoteIdent(c.Table.Columns[i].SourceName))
	}
	from := s.qualified[c.Table]
	if c.Part != "" {
		from = c.Part
	}
	var where []string
	if c.Count > 1 && c.Part == "" {
		if c.Index > 0 {
			where = append(where, fmt.Sprintf("ctid >= '(%d,0)'::tid", c.Lo))
		}
		if c.Index < c.Count-1 {
			// The last chunk is open-ended: the table may have grown since it was measured.
			where = append(where, fmt.Sprintf("ctid < '(%d,0)'::tid", c.Hi))
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + from
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	format := "text"
	if f == runtime.CopyBinary {
		format = "binary"
	}
	_, err = conn.PgConn().CopyTo(ctx, w, "COPY ("+q+") TO STDOUT WITH (FORMAT "+format+")")
	if err != nil {
		return fmt.Errorf("copy out of the source: %w", err)
	}
	return nil
}

// copier returns a session inside the exported snapshot, opening one if all
// are busy.
func (s *Source) copier(ctx context.Context) (*pgx.Conn, error) {
	s.snapMu.Lock()
	if s.copiers == nil {
		s.copiers = make(chan *pgx.Conn, 64)
	}
	select {
	case c := <-s.copiers:
		s.snapMu.Unlock()
		return c, nil
	default:
	}
	name := s.snapName
	s.snapMu.Unlock()
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if name != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+pgtext.Literal(name)); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("import the snapshot: %w", err)
		}
	}
	s.snapMu.Lock()
	s.allCopier = append(s.allCopier, conn)
	s.snapMu.Unlock()
	return conn, nil
}

// EndSnapshot implements runtime.Source.
func (s *Source) EndSnapshot(ctx context.Context) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	for _, c := range s.allCopier {
		c.Close(ctx)
	}
	s.allCopier, s.copiers = nil, nil
	if s.exporter != nil {
		s.exporter.Close(ctx)
		s.exporter = nil
	}
	if s.exportTx != nil {
		s.exportTx.Close(ctx)
		s.exportTx = nil
	}
	s.snapName = ""
	return nil
}

// SequenceValues implements runtime.Source.
func (s *Source) SequenceValues(ctx context.Context, tables []*runtime.Table) ([]runtime.SequenceValue, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var out []runtime.SequenceValue
	for _, t := range tables {
		for _, q := range t.Sequences {
			v := runtime.SequenceValue{Schema: q.Schema, Name: q.Name}
			if q.Identity {
				v = runtime.SequenceValue{Table: t, Column: q.Column}
			}
			err := conn.QueryRow(ctx, "SELECT last_value, is_called FROM "+quoteIdent(q.SourceSchema)+"."+quoteIdent(q.SourceName)).Scan(&v.LastValue, &v.IsCalled)
			if err != nil {
				return nil, fmt.Errorf("read sequence %s.%s: %w", q.SourceSchema, q.SourceName, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Ack implements runtime.Acker: the stream reports the highest acknowledged
// position to the slot as flushed, and the server may then recycle the WAL
// before it.
func (s *Source) Ack(pos runtime.Position) {
	l := uint64(pos.(runtime.LSN))
	for {
		cur := s.acked.Load()
		if l <= cur || s.acked.CompareAndSwap(cur, l) {
			return
		}
	}
}

// Close implements runtime.Source.
func (s *Source) Close(ctx context.Context) error { return s.EndSnapshot(ctx) }

// Drop removes the capture resources, the slot and the publications, which
// Close keeps so that the replication can resume.
func (s *Source) Drop(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot); err != nil {
		return fmt.Errorf("drop slot %s: %w", s.cfg.Slot, err)
	}
	return s.dropPublications(ctx, conn)
}

// DropPublications removes the publications only: the slot is the
// user's (an endpoint's SlotName), theirs to drop.
func (s *Source) DropPublications(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return s.dropPublications(ctx, conn)
}

func (s *Source) dropPublications(ctx context.Context, conn *pgx.Conn) error {
	for _, p := range []string{s.cfg.Publication, s.cfg.Publication + "_ins"} {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(p)); err != nil {
			return fmt.Errorf("drop publication %s: %w", p, err)
		}
	}
	return nil
}
