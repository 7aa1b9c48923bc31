package telemetry

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
)

// envOf is a getenv over a fixed environment.
func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestSetupEnv(t *testing.T) {
	for _, tc := range []struct {
		name             string
		env              []string
		traces, metrics  bool   // providers installed
		err              string // part of the error, "" for none
		alsoInTheMessage string
	}{
		// Tests and developer machines export nothing unless asked.
		{name: "default is none", env: nil},
		{name: "none", env: []string{envTracesExporter, "none", envMetricsExporter, "none"}},
		{name: "console traces only", env: []string{envTracesExporter, "console"}, traces: true},
		// stdout is accepted as another name for console.
		{name: "stdout metrics only", env: []string{envMetricsExporter, "stdout"}, metrics: true},
		{name: "otlp both", env: []string{envTracesExporter, "otlp", envMetricsExporter, "otlp"}, traces: true, metrics: true},
		{name: "a list", env: []string{envTracesExporter, "console, otlp", envMetricsExporter, "none"}, traces: true},
		{name: "otlp over http/protobuf", env: []string{envTracesExporter, "otlp", envProtocol, "http/protobuf"}, traces: true},
		// The SDK's kill switch wins over anything else, even a bad value.
		{name: "disabled", env: []string{envDisabled, "TRUE", envTracesExporter, "zipkin"}},
		{name: "not disabled", env: []string{envDisabled, "false", envTracesExporter, "console"}, traces: true},
		{name: "disabled not a boolean", env: []string{envDisabled, "yes"}, err: envDisabled, alsoInTheMessage: "true or false"},
		{name: "unknown trace exporter", env: []string{envTracesExporter, "zipkin"}, err: envTracesExporter, alsoInTheMessage: "use none (the default), console (or stdout) or otlp"},
		{name: "unknown metric exporter", env: []string{envMetricsExporter, "otlp,prometheus"}, err: envMetricsExporter, alsoInTheMessage: `"prometheus"`},
		// Only the HTTP exporters are linked in; gRPC is refused by name.
		{name: "grpc", env: []string{envTracesExporter, "otlp", envProtocol, "grpc"}, err: envProtocol, alsoInTheMessage: "http/protobuf"},
		{name: "signal protocol first", env: []string{envMetricsExporter, "otlp", envMetricsProtocol, "http/json", envProtocol, "http/protobuf"}, err: envMetricsProtocol},
		// A protocol matters only to otlp.
		{name: "protocol without otlp", env: []string{envTracesExporter, "console", envProtocol, "grpc"}, traces: true},
		{name: "bad resource attributes", env: []string{envTracesExporter, "console", "OTEL_RESOURCE_ATTRIBUTES", "no-equals-sign"}, err: "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"} {
				t.Setenv(k, "") // resource.WithFromEnv reads the real environment
			}
			collector(t) // the last metric export at shutdown needs one
			if i := slices.Index(tc.env, "OTEL_RESOURCE_ATTRIBUTES"); i >= 0 {
				t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.env[i+1])
			}
			shutdown, err := setup(context.Background(), "sluice-test", nil, envOf(tc.env...), io.Discard)
			if tc.err != "" {
				if err == nil {
					shutdown(context.Background())
					t.Fatalf("no error; want one naming %s", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.alsoInTheMessage) {
					t.Fatalf("error %q does not name %s (and %q)", err, tc.err, tc.alsoInTheMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			installed.Lock()
			traces, metrics := installed.traces != nil, installed.metrics != nil
			installed.Unlock()
			if traces != tc.traces || metrics != tc.metrics {
				t.Errorf("installed traces %v metrics %v, want %v %v", traces, metrics, tc.traces, tc.metrics)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := Flush(context.Background()); err != nil {
				t.Errorf("flush after shutdown: %v", err)
			}
		})
	}
}

// TestSetupConsole checks what the console exporters write: the spans and
// points, with the resource the environment overrides.
func TestSetupConsole(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "renamed")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	var out syncBuffer
	shutdown, err := setup(context.Background(), "sluice-test", nil,
		envOf(envTracesExporter, "console", envMetricsExporter, "stdout"), &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "dms.DescribeEndpoints")
	span.End()
	counter, err := otel.Meter("test").Int64Counter("sluice.test.requests")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 1)
	if err := Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{`"dms.DescribeEndpoints"`, `"sluice.test.requests"`, `"renamed"`, `"deployment.environment.name"`} {
		if !strings.Contains(got, want) {
			t.Errorf("console output lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"sluice-test"`) {
		t.Errorf("OTEL_SERVICE_NAME did not replace the service name:\n%s", got)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFlushing checks that a wrapped Lambda handler's spans are exported
// by the time it returns, though the batch processor would wait seconds.
func TestFlushing(t *testing.T) {
	var out syncBuffer
	shutdown, err := setup(context.Background(), "sluice-test", nil, envOf(envTracesExporter, "console"), &out)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	handler := Flushing(func(ctx context.Context, op string) (string, error) {
		_, span := otel.Tracer("test").Start(ctx, "dms."+op)
		span.End()
		return "done", nil
	})
	if got, err := handler(context.Background(), "StartReplication"); got != "done" || err != nil {
		t.Fatalf("handler returned %q, %v", got, err)
	}
	if !strings.Contains(out.String(), `"dms.StartReplication"`) {
		t.Fatalf("the span was not exported before the handler returned; output: %q", out.String())
	}
}

// TestSetupOTLP checks that otlp sends both signals over HTTP to
// OTEL_EXPORTER_OTLP_ENDPOINT when flushed, as a Lambda does before it
// returns.
func TestSetupOTLP(t *testing.T) {
	received := collector(t)
	shutdown, err := setup(context.Background(), "sluice-test", nil,
		envOf(envTracesExporter, "otlp", envMetricsExporter, "otlp", envProtocol, "http/protobuf"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := otel.Tracer("test").Start(context.Background(), "sluice.commit")
	span.End()
	gauge, err := otel.Meter("test").Int64Gauge("sluice.test.gauge")
	if err != nil {
		t.Fatal(err)
	}
	gauge.Record(context.Background(), 1)
	if err := Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := received()
	for _, path := range []string{"/v1/traces", "/v1/metrics"} {
		if got[path] != "application/x-protobuf" {
			t.Errorf("POST %s: content type %q, want application/x-protobuf (received: %v)", path, got[path], got)
		}
	}
}

// collector serves OTLP/HTTP on loopback for the test, sets
// OTEL_EXPORTER_OTLP_ENDPOINT to it, and returns what it received so far:
// the content type of the last request to each path.
func collector(t *testing.T) func() map[string]string {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get("Content-Type")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
}

// syncBuffer is a bytes.Buffer the exporters' goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
