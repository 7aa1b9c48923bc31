package runtime

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// The replicator's spans: the full load, each table's copy in it, and each
// target transaction of the change stream (a group of source
// transactions). They carry the semantic conventions' db.* attributes of
// the target when the context names it (WithTraceTarget), and these of
// Sluice's own.
const (
	traceScope    = "github.com/sluicedb/sluice/runtime"
	spanFullLoad  = "sluice.full_load"
	spanLoadTable = "sluice.load_table"
	spanCommit    = "sluice.commit"

	rowsKey         = attribute.Key("sluice.rows")         // rows a table's copy loaded
	changesKey      = attribute.Key("sluice.changes")      // row changes and DDLs a target transaction applied
	transactionsKey = attribute.Key("sluice.transactions") // source transactions it grouped
)

// DBName names a database the way the OpenTelemetry semantic conventions
// do: System is db.system.name (postgresql, mysql, mariadb) and Database is
// the database a PostgreSQL endpoint connects to. MySQL has none: its
// databases are the schemas.
type DBName struct {
	System, Database string
}

// Namespace is the db.namespace of a schema: database|schema on
// PostgreSQL, the schema itself (a database) on MySQL and MariaDB. An empty
// schema gives the PostgreSQL database alone.
func (d DBName) Namespace(schema string) string {
	switch {
	case d.System != semconv.DBSystemNamePostgreSQL.Value.AsString() || d.Database == "":
		return schema
	case schema == "":
		return d.Database
	}
	return d.Database + "|" + schema
}

type traceTargetKey struct{}

// WithTraceTarget returns a copy of ctx that names the target database in
// the spans of a replicator run with it; without it they carry no db.*
// attributes.
func WithTraceTarget(ctx context.Context, target DBName) context.Context {
	return context.WithValue(ctx, traceTargetKey{}, target)
}

// dbAttributes are the db.* attributes of a span that writes table t of
// the target named in ctx, or several tables when t is nil.
func dbAttributes(ctx context.Context, t *Table) []attribute.KeyValue {
	d, ok := ctx.Value(traceTargetKey{}).(DBName)
	if !ok {
		return nil
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameKey.String(d.System)}
	schema := ""
	if t != nil {
		schema = t.Schema
		attrs = append(attrs, semconv.DBCollectionName(t.Name))
	}
	if ns := d.Namespace(schema); ns != "" {
		attrs = append(attrs, semconv.DBNamespace(ns))
	}
	return attrs
}

// tableSpan is a table's copy, from its first chunk to its last.
type tableSpan struct {
	once sync.Once
	span trace.Span
}

// start starts the span when the table's first chunk starts, and returns
// it.
func (s *tableSpan) start(ctx context.Context, tracer trace.Tracer, c Chunk) trace.Span {
	s.once.Do(func() {
		_, s.span = tracer.Start(ctx, spanLoadTable, trace.WithAttributes(dbAttributes(ctx, c.Table)...))
	})
	return s.span
}

// endSpan ends span, with err as its error if not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
