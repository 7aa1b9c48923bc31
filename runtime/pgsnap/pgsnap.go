// Package pgsnap is a read-only PostgreSQL session in a snapshot, shared
// by the source and the target for validation (runtime.ReadSession).
package pgsnap

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// Session is a REPEATABLE READ, READ ONLY transaction on its own
// connection.
type Session struct {
	Conn *pgx.Conn
	Pos  runtime.Position
}

// Begin starts the transaction on conn, in the exported snapshot named
// snapshot if it is not empty.
func Begin(ctx context.Context, conn *pgx.Conn, snapshot string) (*Session, error) {
	// JIT compiling a validation query costs more than it saves (each is
	// one scan of a range), and the validator runs its own sessions in
	// parallel: parallel workers under each only add sorts and processes.
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
		return nil, err
	}
	if snapshot != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+pgtext.Literal(snapshot)); err != nil {
			return nil, fmt.Errorf("import snapshot %s: %w", snapshot, err)
		}
	}
	return &Session{Conn: conn}, nil
}

// Position implements runtime.ReadSession.
func (s *Session) Position() runtime.Position { return s.Pos }

// Query implements runtime.ReadSession. The simple protocol returns every
// value as text.
func (s *Session) Query(ctx context.Context, q string, row func([][]byte) error) error {
	rows, err := s.Conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.RawValues()); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Close implements runtime.ReadSession.
func (s *Session) Close(ctx context.Context) error { return s.Conn.Close(ctx) }
