package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

const (
	// connectTestTimeout bounds each endpoint's connection test.
	connectTestTimeout = 10 * time.Second
	// analysisWindow is how long the source's change rate is sampled.
	analysisWindow = time.Second
)

const tracer = "github.com/sluicedb/sluice/capacity/control"

// testConnections connects to both endpoints as the replicator will, so a
// wrong host or password fails the start with the reason, before any
// capacity is provisioned.
func testConnections(ctx context.Context, t *task.Task) error {
	for _, e := range []struct {
		role string
		ep   task.Endpoint
	}{{"source", t.SourceEndpoint}, {"target", t.TargetEndpoint}} {
		if err := e.ep.Ping(ctx, connectTestTimeout); err != nil {
			return fmt.Errorf("test connection to the %s endpoint %s (%s:%d/%s): %v. Check the endpoint's server, port, database, user name and password, and that the server accepts connections from Sluice", e.role, e.ep.EndpointIdentifier, e.ep.ServerName, e.ep.Port, e.ep.DatabaseName, err)
		}
	}
	return nil
}

// check is the pre-migration check: every setting or privilege of the
// source that would stop its change stream, and a target that does not take
// writes, each with its fix.
func check(ctx context.Context, t *task.Task, log *slog.Logger) []string {
	ctx, span := startSpan(ctx, "sluice.check", t)
	defer span.End()
	problems := append(task.CheckSource(ctx, t, log), task.CheckTarget(ctx, t, log)...)
	span.SetAttributes(telemetry.ProblemsKey.Int(len(problems)))
	return problems
}

// Metadata collects what the planner needs of t's source: the selected
// tables' rows and bytes, LOB columns and keyless tables from the catalog,
// and the change rate from the WAL or binlog position read sample apart.
func Metadata(ctx context.Context, t *task.Task, sample time.Duration, log *slog.Logger) (m capacity.Metadata, err error) {
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
		if tb.Identity != runtime.IdentityKey {
			m.TablesWithout++
		}
		for _, c := range tb.Columns {
			if lob(c) {
				m.LOBColumns++
			}
		}
	}
	if m.Bytes, err = t.SourceEndpoint.TableBytes(ctx, tables); err != nil {
		return m, fmt.Errorf("read the size of the source's tables: %w", err)
	}
	if m.ChangeBytesPerSecond, err = t.SourceEndpoint.ChangeRate(ctx, sample); err != nil {
		return m, fmt.Errorf("sample the source's change rate: %w", err)
	}
	return m, nil
}

// startSpan starts the span of an analysis or check of t, with its source
// database's db.* attributes.
func startSpan(ctx context.Context, name string, t *task.Task) (context.Context, trace.Span) {
	src := telemetry.DB(t.SourceEndpoint.EngineName, t.SourceEndpoint.DatabaseName)
	return otel.Tracer(tracer).Start(ctx, name, trace.WithAttributes(telemetry.DBAttributes(src)...))
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

// size plans a replication's capacity from its source (within its
// ComputeConfig) and returns the task document sized by the plan. A source
// that cannot be analyzed gets the config's minimum, and the reason says
// why; the replicator then reports what is wrong with it.
func (s *Server) size(ctx context.Context, t *task.Task, cfg *store.Config) (capacity.Plan, []byte, error) {
	minU, maxU := cfg.UnitRange()
	md, err := Metadata(ctx, t, analysisWindow, s.Log)
	var p capacity.Plan
	if err == nil {
		p, err = capacity.Size(md, minU, maxU)
	}
	if err != nil {
		s.Log.Warn("sizing from the source failed; using the config's minimum capacity", "replication", t.ReplicationConfigIdentifier, "error", err)
		p = capacity.Fixed(minU, maxU)
		p.Reason += " The source could not be analyzed: " + err.Error()
	}
	doc, err := sized(t, p)
	return p, doc, err
}

// sized is t's document with the settings plan decides.
func sized(t *task.Task, p capacity.Plan) ([]byte, error) {
	if err := t.Size(p.BufferMiB, p.FullLoadParallelism); err != nil {
		return nil, err
	}
	return json.Marshal(t)
}

// Analysis is what the analyze function answers: the source's metadata
// and the capacity plan for it.
type Analysis struct {
	ReplicationConfigArn string
	Metadata             capacity.Metadata
	Plan                 capacity.Plan
}

// Analyze analyzes a replication's source and plans its capacity, without
// starting anything (the analyze function). It needs only the store and
// the credentials, not a running loop.
func (s *Server) Analyze(ctx context.Context, arn string) (*Analysis, error) {
	t, cfg, err := s.task(ctx, arn)
	if err != nil {
		return nil, err
	}
	md, err := Metadata(ctx, t, analysisWindow, s.Log)
	if err != nil {
		return nil, err
	}
	minU, maxU := cfg.UnitRange()
	p, err := capacity.Size(md, minU, maxU)
	if err != nil {
		return nil, err
	}
	return &Analysis{ReplicationConfigArn: arn, Metadata: md, Plan: p}, nil
}
