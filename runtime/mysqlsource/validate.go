package mysqlsource

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
)

var _ runtime.SnapshotReader = (*Source)(nil)

// Dialect implements runtime.SnapshotReader.
func (s *Source) Dialect() string { return runtime.DialectMySQL }

// ReadSnapshots implements runtime.SnapshotReader. Each session has its
// own consistent snapshot. MariaDB says exactly where in the binlog each
// one is (binlog_snapshot_file and _position); MySQL says it only under
// the moment's global read lock.
func (s *Source) ReadSnapshots(ctx context.Context, _ string, n int, positioned bool) ([]runtime.ReadSession, error) {
	out := make([]runtime.ReadSession, 0, n)
	fail := func(err error) ([]runtime.ReadSession, error) {
		runtime.CloseSessions(ctx, out)
		return nil, err
	}
	for range n {
		conn, err := s.connect(ctx)
		if err != nil {
			return fail(err)
		}
		snap := &mysqlconn.Snapshot{Conn: conn}
		if !positioned {
			err = mysqlconn.BeginSnapshot(conn)
		} else {
			snap.Pos, err = s.validationSnapshot(snap)
		}
		if err != nil {
			conn.Close()
			return fail(fmt.Errorf("source snapshot: %w", err))
		}
		out = append(out, snap)
	}
	return out, nil
}

func (s *Source) validationSnapshot(snap *mysqlconn.Snapshot) (runtime.Position, error) {
	conn := snap.Conn
	if s.flavor != mysql.MariaDBFlavor {
		if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
			var me *mysql.MyError
			if errors.As(err, &me) && (me.Code == 1227 || me.Code == 1045) {
				// Without the position, a snapshot says nothing about the
				// rows the stream was writing: validation waits them out.
				return nil, mysqlconn.BeginSnapshot(conn)
			}
			return nil, err
		}
		err := mysqlconn.BeginSnapshot(conn)
		var pos runtime.BinlogPos
		if err == nil {
			pos, err = masterStatus(conn)
		}
		if _, uerr := conn.Execute("UNLOCK TABLES"); err == nil && uerr != nil {
			err = uerr
		}
		return pos, err
	}
	if err := mysqlconn.BeginSnapshot(conn); err != nil {
		return nil, err
	}
	pos, err := mariadbSnapshotPos(conn)
	if err != nil {
		return nil, err
	}
	if pos.File == "" {
		// No binlog: no change stream either; the snapshot has no
		// position to compare.
		return nil, nil
	}
	return pos, nil
}

var _ runtime.RowFetcher = (*Source)(nil)

// FetchRows implements runtime.RowFetcher: the rows read over the text
// protocol and rendered as the binlog's are.
func (s *Source) FetchRows(ctx context.Context, t *runtime.Table, keys []runtime.Row) ([]runtime.Row, error) {
	if len(keys) == 0 || len(t.Key) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	cols := s.cols[t]
	s.mu.Unlock()
	if len(cols) != len(t.Columns) {
		return nil, fmt.Errorf("table %s is not one this replication has read", t.QualifiedSource())
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = quote(c.name)
		if c.dataType == "float" {
			sel[i] = "CAST(" + sel[i] + " AS DOUBLE)"
		}
	}
	keyCols := make([]string, len(t.Key))
	for i, ci := range t.Key {
		keyCols[i] = quote(cols[ci].name)
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM " + quote(t.SourceSchema, t.SourceName) + " WHERE (" + strings.Join(keyCols, ", ") + ") IN (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, ci := range t.Key {
			if j > 0 {
				b.WriteString(", ")
			}
			mysqlconn.WriteLiteral(&b, string(k[ci].Data))
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	r, err := conn.Execute(b.String())
	if err != nil {
		return nil, fmt.Errorf("read rows to repair from %s: %w", t.QualifiedSource(), err)
	}
	out := make([]runtime.Row, 0, r.RowNumber())
	for i := range r.RowNumber() {
		row := make(runtime.Row, len(cols))
		for j := range cols {
			v, err := s.render(&cols[j], r.Values[i][j].Value())
			if err != nil {
				return nil, err
			}
			row[j] = v
		}
		out = append(out, row)
	}
	return out, nil
}
