// Package analyze looks at a replication's source before its replicator
// is sized: what the selected tables hold and how fast the source writes,
// for the capacity planner.
package analyze

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/telemetry"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/task"
)

// Analyze collects the metadata of t's source: the selected tables' rows
// and bytes, LOB columns and keyless tables from the catalog, and the
// change rate from the WAL or binlog position read sample apart.
func Analyze(ctx context.Context, t *task.Task, sample time.Duration, log *slog.Logger) (m capacity.Metadata, err error) {
	ctx, span := startSpan(ctx, "sluice.analyze", t)
	defer func() {
		span.SetAttributes(telemetry.TablesKey.Int(m.Tables))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	m = capacity.Metadata{FullLoad: t.ReplicationType != runtime.CDC}
	tables, err := task.SourceTables(ctx, t, log)
	if err != nil {
		return m, err
	}
	m.Tables = len(tables)
	for _, tb := range tables {
		m.Rows += max(tb.EstimatedRows, 0)
		m.Bytes += max(tb.Pages, 0) * 8192
		if tb.Identity != runtime.IdentityKey {
			m.TablesWithout++
		}
		for _, c := range tb.Columns {
			if lob(c) {
				m.LOBColumns++
			}
		}
	}
	if !t.SourceEndpoint.IsMySQL() && len(tables) > 0 {
		// relpages stays 0 until a table is vacuumed or analyzed: ask
		// for the size on disk instead.
		if m.Bytes, err = pgBytes(ctx, t.SourceEndpoint, tables); err != nil {
			return m, fmt.Errorf("read the size of the source's tables: %w", err)
		}
	}
	rate, err := changeRate(ctx, t.SourceEndpoint, sample)
	if err != nil {
		return m, fmt.Errorf("sample the source's change rate: %w", err)
	}
	m.ChangeBytesPerSecond = rate
	return m, nil
}

// pgBytes is the size on disk of PostgreSQL tables, TOAST included.
func pgBytes(ctx context.Context, e task.Endpoint, tables []*runtime.Table) (int64, error) {
	conn, err := pgx.Connect(ctx, e.ConnString())
	if err != nil {
		return 0, err
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
	return n, err
}

// Check is the pre-migration check: every setting or privilege of the
// source that would stop its change stream, and a target that does not
// take writes, each with its fix.
func Check(ctx context.Context, t *task.Task, log *slog.Logger) []string {
	ctx, span := startSpan(ctx, "sluice.check", t)
	defer span.End()
	problems := append(task.CheckSource(ctx, t, log), task.CheckTarget(ctx, t, log)...)
	span.SetAttributes(telemetry.ProblemsKey.Int(len(problems)))
	return problems
}

// startSpan starts the span of an analysis or check of t, with its source
// database's db.* attributes.
func startSpan(ctx context.Context, name string, t *task.Task) (context.Context, trace.Span) {
	src := telemetry.DB(t.SourceEndpoint.EngineName, t.SourceEndpoint.DatabaseName)
	return otel.Tracer("github.com/sluicedb/sluice/functions/analyze").Start(ctx, name,
		trace.WithAttributes(telemetry.DBAttributes(src)...))
}

// lob says whether a column holds large values.
func lob(c runtime.Column) bool {
	t := strings.ToLower(c.Type)
	switch {
	case c.MySQLType != "":
		d := strings.ToLower(c.MySQLType)
		return strings.Contains(d, "blob") || strings.Contains(d, "text") || d == "json"
	case t == "text", t == "bytea", t == "json", t == "jsonb", t == "xml":
		return true
	}
	return false
}

// changeRate is how many bytes of WAL or binlog the source writes a second.
func changeRate(ctx context.Context, e task.Endpoint, sample time.Duration) (float64, error) {
	var read func() (int64, error)
	if e.IsMySQL() {
		conn, err := mysqlconn.Connect(ctx, e.MySQLServer(), 10*time.Second)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		// Offsets of different files do not subtract: a rotation in the
		// window counts the new file's offset only, an underestimate.
		var file string
		read = func() (int64, error) {
			r, err := conn.Execute("SHOW MASTER STATUS")
			if err != nil || r.RowNumber() == 0 {
				return 0, fmt.Errorf("SHOW MASTER STATUS: %v", err)
			}
			f, _ := r.GetString(0, 0)
			pos, _ := r.GetInt(0, 1)
			if file != "" && f != file {
				pos = -pos
			}
			file = f
			return pos, nil
		}
	} else {
		conn, err := pgx.Connect(ctx, e.ConnString())
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		read = func() (int64, error) {
			var lsn int64
			err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&lsn)
			return lsn, err
		}
	}
	a, err := read()
	if err != nil {
		return 0, err
	}
	began := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(sample):
	}
	b, err := read()
	if err != nil {
		return 0, err
	}
	if b < 0 {
		b, a = -b, 0
	}
	return float64(max(b-a, 0)) / time.Since(began).Seconds(), nil
}
