package pgsource

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgsnap"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

var _ runtime.SnapshotReader = (*Source)(nil)

// Dialect implements runtime.SnapshotReader.
func (s *Source) Dialect() string { return runtime.DialectPostgres }

// snapshots numbers the temporary slots of validation snapshots, which may
// be open side by side.
var snapshots atomic.Int64

// ReadSnapshots implements runtime.SnapshotReader. The sessions share one
// snapshot, exported by a temporary logical slot made for it, so its
// position compares with the commit positions of the replication's own
// slot. PostgreSQL drops the slot when its session ends, as soon as every
// session has imported the snapshot. Without positioned, or on a server
// that does not log logically (a full load alone), a plain exported
// snapshot serves, with no position.
func (s *Source) ReadSnapshots(ctx context.Context, _ string, n int, positioned bool) ([]runtime.ReadSession, error) {
	name, pos, done, err := s.validationSnapshot(ctx, positioned)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]runtime.ReadSession, 0, n)
	for range n {
		conn, err := s.connect(ctx)
		if err != nil {
			runtime.CloseSessions(ctx, out)
			return nil, err
		}
		sess, err := pgsnap.Begin(ctx, conn, name)
		if err != nil {
			conn.Close(ctx)
			runtime.CloseSessions(ctx, out)
			return nil, fmt.Errorf("source snapshot: %w", err)
		}
		sess.Pos = pos
		out = append(out, sess)
	}
	return out, nil
}

// validationSnapshot exports a snapshot and returns its name, its
// position (nil if it has none) and what ends the export.
func (s *Source) validationSnapshot(ctx context.Context, positioned bool) (string, runtime.Position, func(), error) {
	logical := false
	if positioned {
		conn, err := s.connect(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		var level string
		err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&level)
		conn.Close(ctx)
		if err != nil {
			return "", nil, nil, fmt.Errorf("read the source's wal_level: %w", err)
		}
		logical = level == "logical"
	}
	if !logical {
		// No change stream to compare with, or none can run here.
		conn, name, err := s.plainSnapshot(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		return name, nil, func() { conn.Close(context.WithoutCancel(ctx)) }, nil
	}
	slot := s.cfg.Slot
	if slot == "" {
		slot = "sluice"
	}
	if len(slot) > 48 {
		slot = slot[:48]
	}
	repl, name, at, err := s.slotSnapshot(ctx, fmt.Sprintf("%s_val%d", slot, snapshots.Add(1)))
	if err != nil {
		return "", nil, nil, err
	}
	return name, at, func() { repl.Close(context.WithoutCancel(ctx)) }, nil
}

var _ runtime.RowFetcher = (*Source)(nil)

// FetchRows implements runtime.RowFetcher: each column in its type's text
// form, as pgoutput sends it.
func (s *Source) FetchRows(ctx context.Context, t *runtime.Table, keys []runtime.Row) ([]runtime.Row, error) {
	if len(keys) == 0 || len(t.Key) == 0 {
		return nil, nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgtext.Ident(c.SourceName) + "::text"
	}
	keyCols := make([]string, len(t.Key))
	for i, ci := range t.Key {
		keyCols[i] = pgtext.Ident(t.Columns[ci].SourceName) + "::text"
	}
	tuples := make([]string, len(keys))
	for i, k := range keys {
		vals := make([]string, len(t.Key))
		for j, ci := range t.Key {
			vals[j] = pgtext.Literal(string(k[ci].Data))
		}
		tuples[i] = "(" + strings.Join(vals, ", ") + ")"
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + pgtext.Ident(t.SourceSchema, t.SourceName) +
		" WHERE (" + strings.Join(keyCols, ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
	rows, err := conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("read rows to repair from %s: %w", t.QualifiedSource(), err)
	}
	defer rows.Close()
	var out []runtime.Row
	for rows.Next() {
		raw := rows.RawValues()
		row := make(runtime.Row, len(raw))
		for i, b := range raw {
			if b == nil {
				row[i] = runtime.Value{Kind: runtime.Null}
			} else {
				row[i] = runtime.Value{Kind: runtime.Text, Data: bytes.Clone(b)}
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
