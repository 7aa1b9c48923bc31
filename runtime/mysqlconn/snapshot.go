package mysqlconn

import (
	"context"
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
)

// Snapshot is a read-only session in a consistent snapshot, for
// validation (runtime.ReadSession).
type Snapshot struct {
	Conn *client.Conn
	Pos  runtime.Position
}

// BeginSnapshot starts a consistent, read-only snapshot on conn (a session
// of Connect: text as utf8mb4, times in UTC).
func BeginSnapshot(conn *client.Conn) error {
	for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("start a consistent snapshot: %w", err)
		}
	}
	return nil
}

// Position implements runtime.ReadSession.
func (s *Snapshot) Position() runtime.Position { return s.Pos }

// Query implements runtime.ReadSession. The rows stream: memory holds one
// at a time. A cancelled ctx closes the session.
func (s *Snapshot) Query(ctx context.Context, q string, row func([][]byte) error) error {
	stop := context.AfterFunc(ctx, func() { s.Conn.Close() })
	defer stop()
	var res mysql.Result
	var vals [][]byte
	err := s.Conn.ExecuteSelectStreaming(q, &res, func(r []mysql.FieldValue) error {
		vals = vals[:0]
		for i := range r {
			vals = append(vals, fieldText(&r[i]))
		}
		return row(vals)
	}, nil)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func fieldText(v *mysql.FieldValue) []byte {
	switch v.Type {
	case mysql.FieldValueTypeNull:
		return nil
	case mysql.FieldValueTypeUnsigned:
		return strconv.AppendUint(nil, v.AsUint64(), 10)
	case mysql.FieldValueTypeSigned:
		return strconv.AppendInt(nil, v.AsInt64(), 10)
	case mysql.FieldValueTypeFloat:
		return strconv.AppendFloat(nil, v.AsFloat64(), 'g', -1, 64)
	}
	if b := v.AsString(); b != nil {
		return b
	}
	return []byte{}
}

// Close implements runtime.ReadSession.
func (s *Snapshot) Close(context.Context) error { return s.Conn.Close() }
