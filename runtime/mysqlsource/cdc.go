package mysqlsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluicedb/sluice/runtime"
)

// ErrBinlogPurged marks a start position whose binlog file the source has
// already removed.
var ErrBinlogPurged = errors.New("binlog purged")

// stream is the state of one Stream call.
type stream struct {
	src    *Source
	emit   runtime.Emitter
	tables map[string]*runtime.Table
	file   string // the binlog file being read
	inTxn  bool
}

// Stream implements runtime.Source. Transactions are framed by their first
// event (GTID or BEGIN) and their XID or COMMIT; OpBegin carries the
// position of the first event, which compares with a snapshot's position
// since the binlog holds each transaction's events together, in commit
// order. A DDL statement is a transaction of its own (see ddl.go).
func (s *Source) Stream(ctx context.Context, from runtime.Position, tables []*runtime.Table, emit runtime.Emitter) error {
	pos, isPos := from.(runtime.BinlogPos)
	gtid, isGTID := from.(runtime.GTIDSet)
	if !isPos && !isGTID {
		return fmt.Errorf("a MySQL source streams from a binlog position or a GTID set, not %v", from)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	if isPos {
		err = checkBinlogKept(conn, pos)
	} else if gtid.MariaDB != (s.flavor == mysql.MariaDBFlavor) {
		err = fmt.Errorf("GTID position %s is in the other flavor's syntax than this %s source: use SELECT @@gtid_binlog_pos on MariaDB, @@gtid_executed on MySQL", gtid, s.flavor)
	}
	conn.Close()
	if err != nil {
		return err
	}
	syncer := s.syncer()
	defer syncer.Close()
	var streamer *replication.BinlogStreamer
	if isPos {
		streamer, err = syncer.StartSync(mysql.Position{Name: pos.File, Pos: pos.Pos})
	} else {
		// The server says which file it starts in with its first (rotate)
		// event; the checkpoints are binlog positions from there on.
		streamer, err = syncer.StartSyncGTID(gtid.Set())
	}
	if err != nil {
		return fmt.Errorf("start reading the binlog at %s: %w", from, err)
	}
	st := &stream{src: s, emit: emit, tables: map[string]*runtime.Table{}, file: pos.File}
	for _, t := range tables {
		st.tables[t.SourceSchema+"\x00"+t.SourceName] = t
	}
	// A watch ends the wait for the next event once the source has been
	// silent too long: it sends a heartbeat every second. Only the wait
	// counts, not the time spent applying.
	w, wctx, stop := runtime.NewWatch(ctx, silentFor, runtime.SourceBeats)
	defer stop()
	for {
		w.Begin()
		ev, err := streamer.GetEvent(wctx)
		w.End()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cut := runtime.Cut(wctx); cut != nil {
				err = cut
			}
			return fmt.Errorf("read the binlog in %s: %w", st.file, err)
		}
		if err := st.event(ctx, ev); err != nil {
			return err
		}
	}
}

// silentFor is how long the binlog may send nothing, heartbeats included,
// before the stream takes its connection as lost.
const silentFor = 10 * time.Second

// syncer returns a binlog reader registered with the replication's server
// id, reading TIMESTAMP values as UTC.
func (s *Source) syncer() *replication.BinlogSyncer {
	srv := s.cfg.Server
	return replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.cfg.ServerID, Flavor: s.flavor,
		Host: srv.Host, Port: uint16(srv.PortNumber()), User: srv.User, Password: srv.Password,
		TimestampStringLocation: time.UTC,
		// An idle binlog sends a heartbeat each second, whose position
		// tells the applier (OpProgress) how far the stream has come.
		HeartbeatPeriod: time.Second,
		// go-mysql logs every reconnect at info; the replicator logs what
		// matters itself.
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// checkBinlogKept fails with the file's name when the source no longer has
// the binlog file the stream must start in.
func checkBinlogKept(conn interface {
	Execute(string, ...any) (*mysql.Result, error)
}, pos runtime.BinlogPos) error {
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return fmt.Errorf("list the source's binlogs (needs the REPLICATION CLIENT privilege): %w", err)
	}
	var first string
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		if i == 0 {
			first = name
		}
		if name == pos.File {
			return nil
		}
	}
	return fmt.Errorf("%w: the change stream must resume in binlog file %s, which the source no longer has (its oldest is %s): the changes since cannot be read. Start the replication again with reload-target, and keep binlogs longer (expire_logs_days / binlog_expire_logs_seconds)", ErrBinlogPurged, pos.File, first)
}

func (st *stream) begin(ctx context.Context, h *replication.EventHeader) error {
	st.inTxn = true
	at := runtime.BinlogPos{File: st.file, Pos: h.LogPos - h.EventSize}
	return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpBegin, Position: at, CommitTime: time.Unix(int64(h.Timestamp), 0)})
}

func (st *stream) end(ctx context.Context, h *replication.EventHeader) error {
	st.inTxn = false
	return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpCommit, Position: runtime.BinlogPos{File: st.file, Pos: h.LogPos}, CommitTime: time.Unix(int64(h.Timestamp), 0)})
}

func (st *stream) event(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		st.file = string(e.NextLogName)
	case *replication.MariadbGTIDEvent:
		if !st.inTxn {
			return st.begin(ctx, h)
		}
	case *replication.GTIDEvent:
		if !st.inTxn {
			return st.begin(ctx, h)
		}
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		switch {
		case strings.EqualFold(q, "BEGIN"):
			if !st.inTxn {
				return st.begin(ctx, h)
			}
		case strings.EqualFold(q, "COMMIT"):
			if st.inTxn {
				return st.end(ctx, h)
			}
		default:
			// A statement (DDL) commits on its own.
			if !st.inTxn {
				if err := st.begin(ctx, h); err != nil {
					return err
				}
			}
			if err := st.ddl(ctx, string(e.Schema), q); err != nil {
				return err
			}
			return st.end(ctx, h)
		}
	case *replication.XIDEvent:
		if st.inTxn {
			return st.end(ctx, h)
		}
	case *replication.RowsEvent:
		return st.rows(ctx, e)
	case *replication.HeartbeatEvent, *replication.MariadbBinlogCheckPointEvent, *replication.MariadbGTIDListEvent:
		file := st.file
		if hb, ok := e.(*replication.HeartbeatEvent); ok && hb.Filename != "" {
			file = hb.Filename
		}
		if !st.inTxn && h.LogPos > 0 && file != "" {
			return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpProgress, Position: runtime.BinlogPos{File: file, Pos: h.LogPos}})
		}
	}
	return nil
}

func (st *stream) rows(ctx context.Context, e *replication.RowsEvent) error {
	t := st.tables[string(e.Table.Schema)+"\x00"+string(e.Table.Table)]
	if t == nil {
		return nil // not selected
	}
	st.src.mu.Lock()
	cols := st.src.cols[t]
	st.src.mu.Unlock()
	row := func(vals []any) (runtime.Row, int, error) {
		if len(vals) != len(cols) {
			return nil, 0, fmt.Errorf("table %s has %d columns in the binlog but %d when the replication started: its definition changed, which Sluice does not follow yet; reload the table (ReloadReplicationTables) or the target", t.QualifiedSource(), len(vals), len(cols))
		}
		out := make(runtime.Row, len(cols))
		size := 0
		for i := range cols {
			v, err := st.src.render(&cols[i], vals[i])
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %w", t.QualifiedSource(), err)
			}
			out[i] = v
			size += len(v.Data) + 16
		}
		return out, size, nil
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, vals := range e.Rows {
			r, size, err := row(vals)
			if err != nil {
				return err
			}
			if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpInsert, Table: t, New: r, Size: size}); err != nil {
				return err
			}
		}
	case replication.EnumRowsEventTypeDelete:
		for _, vals := range e.Rows {
			r, size, err := row(vals)
			if err != nil {
				return err
			}
			if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpDelete, Table: t, Old: r, Size: size}); err != nil {
				return err
			}
		}
	case replication.EnumRowsEventTypeUpdate:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			old, s1, err := row(e.Rows[i])
			if err != nil {
				return err
			}
			nw, s2, err := row(e.Rows[i+1])
			if err != nil {
				return err
			}
			if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpUpdate, Table: t, Old: old, New: nw, Size: s1 + s2}); err != nil {
				return err
			}
		}
	}
	return nil
}
