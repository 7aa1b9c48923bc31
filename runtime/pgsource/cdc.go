package pgsource

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// statusInterval is how often the stream tells the server what the target has
// applied; well under the default wal_sender_timeout of 60 s.
const statusInterval = time.Second

// Silence longer than this ends the stream as a lost connection: between
// transactions every status asks the server for a keepalive, answered at
// once by a live one, so seconds without any message mean a network that
// drops everything (a black hole), which TCP would take minutes to report.
// Inside a transaction nothing is asked for; the server's own keepalives
// come every half of its wal_sender_timeout (60 s by default).
const (
	silentBetween = 10 * time.Second
	silentInside  = 65 * time.Second
)

// relation is a source relation as the stream describes it.
type relation struct {
	table *runtime.Table
	cols  []int // stream column i is table column cols[i]
}

// stream is the state of one Stream call.
type stream struct {
	src       *Source
	conn      *pgconn.PgConn
	emit      runtime.Emitter
	byName    map[string]*runtime.Table
	rels      map[uint32]*relation
	from      runtime.LSN
	skipping  bool // inside a transaction that is already applied
	inTxn     bool
	lastEmit  uint64 // end of the last transaction emitted
	received  uint64 // highest WAL position seen
	idleUntil uint64 // server WAL end seen while nothing was in flight
}

// Stream implements runtime.Source.
func (s *Source) Stream(ctx context.Context, from runtime.Position, tables []*runtime.Table, emit runtime.Emitter) error {
	conn, err := s.connectReplication(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st := &stream{src: s, conn: conn, emit: emit, byName: map[string]*runtime.Table{}, rels: map[uint32]*relation{}}
	for _, t := range tables {
		st.byName[t.SourceSchema+"."+t.SourceName] = t
	}
	if from != nil {
		st.from = from.(runtime.LSN)
	}
	s.Ack(st.from)
	st.lastEmit = uint64(st.from)
	opts := pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + pgtext.Literal(strings.Join(s.publications(tables), ","))},
	}
	err = s.whileSlotBusy(ctx, func() error {
		return pglogrepl.StartReplication(ctx, conn, s.cfg.Slot, pglogrepl.LSN(st.from), opts)
	})
	if err != nil {
		return classify(fmt.Errorf("start streaming from slot %s at %s: %w", s.cfg.Slot, st.from, err), s.cfg.Slot)
	}
	if s.cfg.Heartbeat <= 0 {
		return st.run(ctx)
	}
	// A heartbeat that cannot write ends the stream: silently not beating
	// would let the slot pin WAL the user enabled it to release.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.heartbeat(gctx, s.cfg.Heartbeat) })
	g.Go(func() error { return st.run(gctx) })
	return g.Wait()
}

func (st *stream) run(ctx context.Context) error {
	// Reads carry no context: pgconn would start a goroutine to watch each
	// one, a cost per message. One read deadline per status interval bounds
	// them instead, and a stop cuts the read in progress short.
	nc := st.conn.Conn()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	defer stop()
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	next := time.Now().Add(statusInterval)
	if err := nc.SetReadDeadline(next); err != nil {
		return err
	}
	// silent is how long receives have waited in vain since the last
	// message; time spent applying does not count.
	var silent time.Duration
	for {
		if time.Now().After(next) {
			// Between transactions the server is asked for a keepalive,
			// whose WAL end tells the applier (OpProgress) how far the
			// stream has come while nothing is written.
			if err := st.status(ctx, !st.inTxn); err != nil {
				return err
			}
			next = time.Now().Add(statusInterval)
			if err := nc.SetReadDeadline(next); err != nil {
				return err
			}
		}
		// Checked after the deadline is set: a stop that came before it
		// would otherwise wait out the interval.
		if err := ctx.Err(); err != nil {
			return err
		}
		waited := time.Now()
		msg, err := st.conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				silent += time.Since(waited)
				limit := silentBetween
				if st.inTxn {
					limit = silentInside
				}
				if silent > limit {
					return fmt.Errorf("receive from slot %s: %w", st.src.cfg.Slot, &runtime.SilenceError{Waited: silent, Why: runtime.SourceBeats})
				}
				continue
			}
			return classify(fmt.Errorf("receive from slot %s: %w", st.src.cfg.Slot, err), st.src.cfg.Slot)
		}
		silent = 0
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := st.copyData(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return classify(fmt.Errorf("slot %s: %w", st.src.cfg.Slot, pgconn.ErrorResponseToPgError(m)), st.src.cfg.Slot)
		case *pgproto3.CopyDone, *pgproto3.CommandComplete:
			// The server ended the stream on its own: it is shutting
			// down (a restart). An unexpected end, resumed from the
			// target's position once it is back.
			return fmt.Errorf("slot %s: the server ended the change stream (is it restarting?): %w", st.src.cfg.Slot, io.ErrUnexpectedEOF)
		default:
			return fmt.Errorf("slot %s: unexpected message %T", st.src.cfg.Slot, msg)
		}
	}
}

func (st *stream) copyData(ctx context.Context, data []byte) error {
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return err
		}
		if !st.inTxn && uint64(ka.ServerWALEnd) > st.idleUntil {
			// Everything the server decoded up to here has been sent.
			st.idleUntil = uint64(ka.ServerWALEnd)
			if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpProgress, Position: runtime.LSN(ka.ServerWALEnd)}); err != nil {
				return err
			}
		}
		if ka.ReplyRequested {
			return st.status(ctx, false)
		}
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return err
		}
		if end := uint64(x.WALStart) + uint64(len(x.WALData)); end > st.received {
			st.received = end
		}
		return st.message(ctx, x)
	}
	return nil
}

// status reports the target's durable position as flushed. When nothing is in
// flight and the target has applied everything emitted, the position may move
// to the server's WAL end, so a slot whose tables are idle does not hold WAL.
func (st *stream) status(ctx context.Context, reply bool) error {
	flush := st.src.acked.Load()
	if !st.inTxn && flush >= st.lastEmit && st.idleUntil > flush {
		flush = st.idleUntil
	}
	err := pglogrepl.SendStandbyStatusUpdate(ctx, st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(max(flush, st.received)),
		WALFlushPosition: pglogrepl.LSN(flush),
		WALApplyPosition: pglogrepl.LSN(flush),
		ReplyRequested:   reply,
	})
	if err != nil {
		return fmt.Errorf("send standby status to slot %s: %w", st.src.cfg.Slot, err)
	}
	return nil
}

func (st *stream) message(ctx context.Context, x pglogrepl.XLogData) error {
	msg, err := pglogrepl.Parse(x.WALData)
	if err != nil {
		return fmt.Errorf("decode pgoutput message at %s: %w", x.WALStart, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return st.relation(m)
	case *pglogrepl.BeginMessage:
		st.inTxn = true
		// The slot can resend a transaction the target already has: its
		// commit is at or before the position the stream started from.
		st.skipping = uint64(m.FinalLSN) < uint64(st.from)
		if st.skipping {
			return nil
		}
		return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpBegin, Position: runtime.LSN(m.FinalLSN), CommitTime: m.CommitTime})
	case *pglogrepl.CommitMessage:
		st.inTxn = false
		if st.skipping {
			st.skipping = false
			return nil
		}
		st.lastEmit = uint64(m.TransactionEndLSN)
		return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpCommit, Position: runtime.LSN(m.TransactionEndLSN), CommitTime: m.CommitTime})
	case *pglogrepl.InsertMessage:
		return st.row(ctx, runtime.OpInsert, m.RelationID, nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return st.row(ctx, runtime.OpUpdate, m.RelationID, m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return st.row(ctx, runtime.OpDelete, m.RelationID, m.OldTuple, nil)
	case *pglogrepl.TruncateMessage:
		if st.skipping {
			return nil
		}
		c := &runtime.Change{Op: runtime.OpTruncate}
		for _, id := range m.RelationIDs {
			if r := st.rels[id]; r != nil && r.table != nil {
				c.Tables = append(c.Tables, r.table)
			}
		}
		if len(c.Tables) == 0 {
			return nil
		}
		return st.emit.Emit(ctx, c)
	}
	// Origin, type and logical messages carry nothing to apply.
	return nil
}

// relation records a relation's stream columns, and fails when the source
// table no longer has the shape the replication was set up with: PostgreSQL
// logical decoding carries no DDL, so applying blindly would write columns
// into the wrong places.
func (st *stream) relation(m *pglogrepl.RelationMessage) error {
	t := st.byName[m.Namespace+"."+m.RelationName]
	if t == nil {
		st.rels[m.RelationID] = &relation{}
		return nil
	}
	r := &relation{table: t, cols: make([]int, len(m.Columns))}
	for i, mc := range m.Columns {
		r.cols[i] = -1
		for j, c := range t.Columns {
			if c.SourceName == mc.Name {
				r.cols[i] = j
				break
			}
		}
		if r.cols[i] < 0 {
			return fmt.Errorf("%w: %s has a column %q that it did not have when the replication started. Add the column on the target table %s.%s, then restart the replication (or reload the table)", ErrSchemaChanged, t.QualifiedSource(), mc.Name, t.Schema, t.Name)
		}
	}
	st.rels[m.RelationID] = r
	return nil
}

func (st *stream) row(ctx context.Context, op runtime.Op, relID uint32, old, new *pglogrepl.TupleData) error {
	if st.skipping {
		return nil
	}
	r := st.rels[relID]
	if r == nil {
		return fmt.Errorf("the stream sent a change for relation %d before describing it", relID)
	}
	if r.table == nil {
		return nil
	}
	c := &runtime.Change{Op: op, Table: r.table}
	c.Old = st.tuple(r, old, &c.Size)
	c.New = st.tuple(r, new, &c.Size)
	return st.emit.Emit(ctx, c)
}

func (st *stream) tuple(r *relation, td *pglogrepl.TupleData, size *int) runtime.Row {
	if td == nil {
		return nil
	}
	row := make(runtime.Row, len(r.table.Columns))
	for i := range row {
		// Columns the stream does not carry (generated ones) and key-only
		// old tuples' other columns are unknown, not null.
		row[i].Kind = runtime.Unchanged
	}
	for i, col := range td.Columns {
		v := &row[r.cols[i]]
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			v.Kind = runtime.Null
		case pglogrepl.TupleDataTypeToast:
			v.Kind = runtime.Unchanged
		default:
			v.Kind, v.Data = runtime.Text, col.Data
			*size += len(col.Data)
		}
	}
	*size += 16 * len(row)
	return row
}
