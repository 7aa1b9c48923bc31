package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/infra/sigv4"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
	"github.com/sluicedb/sluice/infra/telemetry/telemetrytest"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

// telemetryRedisDB is the Redis database the telemetry test uses, under a
// key prefix of its own; it empties nothing.
const telemetryRedisDB = 14

// recordSpans makes the global tracer provider one that records every
// ended span in memory, until the test ends.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	return rec
}

// TestTelemetryReplication runs one full-load-and-cdc replication
// PostgreSQL → PostgreSQL in process, with in-memory exporters, and checks
// its spans (the full load, each table's copy, each target transaction,
// with the target's db.* attributes) and its metric points (rows loaded
// equal to the tables' rows, rows applied, lag, capacity).
func TestTelemetryReplication(t *testing.T) {
	p, tk := setup(t, "telemetry", runtime.FullLoadAndCDC, "", `
		CREATE TABLE items (id int PRIMARY KEY, name text);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
		CREATE TABLE notes (id int PRIMARY KEY, body text);
		INSERT INTO notes SELECT g, repeat('n', g) FROM generate_series(1, 37) g;
		ANALYZE;`)
	rec := recordSpans(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	stats := runtime.NewStats()
	src := telemetry.DB(tk.SourceEndpoint.EngineName, tk.SourceEndpoint.DatabaseName)
	reg, err := telemetry.ObserveReplicator(mp.Meter("test"), stats, func() int { return 2 }, telemetry.DBAttributes(src)...)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = runtime.WithTraceTarget(ctx, telemetry.DB(tk.TargetEndpoint.EngineName, tk.TargetEndpoint.DatabaseName))
	done := make(chan error, 1)
	go func() { done <- task.Run(ctx, tk, stats, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	waitFor := func(what string, ok func(runtime.Snapshot) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok(stats.Snapshot()) {
			select {
			case err := <-done:
				t.Fatalf("the replication ended before %s: %v", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 15 s (statistics %+v)", what, stats.Snapshot())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the change stream", func(s runtime.Snapshot) bool { return s.Phase == "cdc" })
	// Three source transactions of ten inserts each.
	for i := range 3 {
		execSQL(t, p.s, "INSERT INTO items SELECT g, 'new' FROM generate_series($1::int, $1::int + 9) g", 1000+10*i)
	}
	waitFor("the inserts applied", func(s runtime.Snapshot) bool {
		ts := tableStats(s, "items")
		return ts != nil && ts.Inserts == 30
	})
	metrics := telemetrytest.Points(t, reader)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("replication: %v", err)
	}

	dst := tk.TargetEndpoint.DatabaseName
	spans := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		// Other tests' replications may run at the same time.
		if v, _ := spanAttr(s, "db.namespace"); v == dst || strings.HasPrefix(v, dst+"|") {
			spans[s.Name()] = append(spans[s.Name()], s)
		}
	}
	target := map[string]string{"db.system.name": "postgresql", "db.namespace": dst}
	if len(spans["sluice.full_load"]) != 1 {
		t.Fatalf("%d sluice.full_load spans, want 1 (spans: %v)", len(spans["sluice.full_load"]), names(spans))
	}
	full := spans["sluice.full_load"][0]
	requireAttrs(t, full, target)
	loads := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans["sluice.load_table"] {
		table, _ := spanAttr(s, "db.collection.name")
		loads[table] = s
	}
	for table, rows := range map[string]string{"items": "500", "notes": "37"} {
		s := loads[table]
		if s == nil {
			t.Errorf("no sluice.load_table span for %s (spans: %v)", table, names(spans))
			continue
		}
		requireAttrs(t, s, map[string]string{"db.system.name": "postgresql", "db.namespace": dst + "|public", "db.collection.name": table, "sluice.rows": rows})
		if s.Parent().SpanID() != full.SpanContext().SpanID() {
			t.Errorf("the load of %s is not a child of the full load", table)
		}
	}
	var changes, transactions int64
	for _, s := range spans["sluice.commit"] {
		requireAttrs(t, s, target)
		if s.Status().Code == codes.Error {
			t.Errorf("commit span failed: %s", s.Status().Description)
		}
		for _, a := range s.Attributes() {
			switch a.Key {
			case "sluice.changes":
				changes += a.Value.AsInt64()
			case "sluice.transactions":
				transactions += a.Value.AsInt64()
			}
		}
	}
	if changes != 30 || transactions < 3 {
		t.Errorf("the sluice.commit spans (%d) hold %d changes in %d source transactions, want 30 in 3 or more", len(spans["sluice.commit"]), changes, transactions)
	}

	srcTable := func(table string) map[string]string {
		return map[string]string{"db.system.name": "postgresql", "db.namespace": tk.SourceEndpoint.DatabaseName + "|public", "db.collection.name": table}
	}
	for _, table := range []string{"items", "notes"} {
		var n float64
		if err := p.s.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE id < 1000").Scan(&n); err != nil {
			t.Fatal(err)
		}
		requirePoint(t, metrics, telemetry.MetricLoadedRows, srcTable(table), n)
		requirePoint(t, metrics, telemetry.MetricFullLoadProgress, srcTable(table), 1)
	}
	inserts := srcTable("items")
	inserts["db.operation.name"] = "INSERT"
	requirePoint(t, metrics, telemetry.MetricAppliedRows, inserts, 30)
	requirePoint(t, metrics, telemetry.MetricCapacity, map[string]string{"db.system.name": "postgresql"}, 2)
	if _, ok := telemetrytest.Find(metrics[telemetry.MetricLag], map[string]string{"db.system.name": "postgresql"}); !ok {
		t.Errorf("no %s point: %v", telemetry.MetricLag, metrics[telemetry.MetricLag])
	}
	if _, ok := telemetrytest.Find(metrics[telemetry.MetricBufferLimit], map[string]string{"db.system.name": "postgresql"}); !ok {
		t.Errorf("no %s point: %v", telemetry.MetricBufferLimit, metrics[telemetry.MetricBufferLimit])
	}
}

// TestTelemetryAPI checks the spans of API operations: dms.<Operation>,
// the AWS SDK's rpc.* attributes, and the fault as error.type, an error
// status only for a server fault.
func TestTelemetryAPI(t *testing.T) {
	rec := recordSpans(t)
	ctx := context.Background()
	st, err := store.Open(ctx, fmt.Sprintf("redis://127.0.0.1:6379/%d", telemetryRedisDB), "sluice-telemetry-test")
	if err != nil {
		t.Fatalf("open Redis database %d (run `make services`): %v", telemetryRedisDB, err)
	}
	defer st.Close()
	h := &api.Handler{
		Store:    st,
		Verifier: &sigv4.Verifier{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: "us-east-1", Service: "dms"},
		Region:   "us-east-1", Account: "000000000000",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, body := signedPost(t, srv.URL, "DescribeEndpoints", `{}`); code != http.StatusOK {
		t.Fatalf("DescribeEndpoints: %d %s", code, body)
	}
	if code, _ := signedPost(t, srv.URL, "DeleteEndpoint", `{"EndpointArn":"arn:aws:dms:us-east-1:000000000000:endpoint:NOSUCHENDPOINT"}`); code != http.StatusBadRequest {
		t.Fatalf("DeleteEndpoint of nothing: %d", code)
	}
	if code, _ := signedPost(t, srv.URL, "DropEverything", `{}`); code != http.StatusBadRequest {
		t.Fatalf("an unknown operation: %d", code)
	}

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	rpc := func(method string, more ...string) map[string]string {
		m := map[string]string{"rpc.system": "aws-api", "rpc.service": "DatabaseMigrationService", "rpc.method": method}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	for name, want := range map[string]map[string]string{
		"dms.DescribeEndpoints": rpc("DescribeEndpoints", "http.response.status_code", "200"),
		"dms.DeleteEndpoint":    rpc("DeleteEndpoint", "error.type", "ResourceNotFoundFault", "http.response.status_code", "400"),
		// What a caller sends as a target never becomes a span name.
		"dms._OTHER": rpc("_OTHER", "error.type", "UnknownOperationException"),
	} {
		s := byName[name]
		if s == nil {
			t.Errorf("no span %s (spans: %v)", name, rec.Ended())
			continue
		}
		requireAttrs(t, s, want)
		// A caller's mistake is not the server's error.
		if s.Status().Code == codes.Error {
			t.Errorf("%s: error status %q", name, s.Status().Description)
		}
	}
	if s := byName["dms.DescribeEndpoints"]; s != nil {
		if _, has := spanAttr(s, "error.type"); has {
			t.Error("dms.DescribeEndpoints: error.type on a success")
		}
	}
}

func names(spans map[string][]sdktrace.ReadOnlySpan) map[string]int {
	out := map[string]int{}
	for n, s := range spans {
		out[n] = len(s)
	}
	return out
}

func spanAttr(s sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String(), true
		}
	}
	return "", false
}

// requireAttrs fails the test unless s has each attribute of want.
func requireAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := spanAttr(s, k); !ok || got != v {
			t.Errorf("span %s: %s = %q, want %q (attributes %v)", s.Name(), k, got, v, s.Attributes())
		}
	}
}

func requirePoint(t *testing.T, metrics map[string][]telemetrytest.Point, name string, attrs map[string]string, want float64) {
	t.Helper()
	got, ok := telemetrytest.Find(metrics[name], attrs)
	switch {
	case !ok:
		t.Errorf("%s%v: no point (points: %v)", name, attrs, metrics[name])
	case got != want:
		t.Errorf("%s%v = %v, want %v", name, attrs, got, want)
	}
}
