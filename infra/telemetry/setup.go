package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// The environment variables Setup reads, as the OpenTelemetry SDK
// specification names them. The exporters read their own as well
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, …), and so do
// the providers (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL).
const (
	envDisabled        = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envMetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
)

// Exporter names accepted in OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER.
const (
	exporterNone    = "none"
	exporterConsole = "console"
	exporterStdout  = "stdout" // another name for console
	exporterOTLP    = "otlp"
	protocolHTTP    = "http/protobuf"
)

// installed holds the providers Setup installed, for Flush.
var installed struct {
	sync.Mutex
	traces  *sdktrace.TracerProvider
	metrics *sdkmetric.MeterProvider
}

// Setup installs the global tracer and meter providers the environment
// asks for and returns the function that flushes and stops them.
//
// OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER take none (the default:
// nothing is installed and instrumentation stays a no-op), console (or
// stdout: JSON lines on standard output) or otlp (OTLP over HTTP, so
// OTEL_EXPORTER_OTLP_PROTOCOL, if set, must be http/protobuf), or a
// comma-separated list of them. OTEL_SDK_DISABLED=true turns everything
// off. The resource is service.name serviceName and attrs (for instance
// ReplicationKey), then OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
// which win. Any other value is an error that names the variable.
func Setup(ctx context.Context, serviceName string, attrs ...attribute.KeyValue) (shutdown func(context.Context) error, err error) {
	return setup(ctx, serviceName, attrs, os.Getenv, os.Stdout)
}

// ShutdownAfterStop runs shutdown, which flushes what is left to export,
// with a context of its own: at a process's stop its context is already
// cancelled.
func ShutdownAfterStop(shutdown func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = shutdown(ctx)
}

// setup is Setup reading the environment through getenv and writing the
// console exporters' output to stdout.
func setup(ctx context.Context, serviceName string, attrs []attribute.KeyValue, getenv func(string) string, stdout io.Writer) (func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	disabled, err := boolEnv(getenv, envDisabled)
	if err != nil {
		return nil, err
	}
	if disabled {
		return off, nil
	}
	traces, err := exporterNames(getenv, envTracesExporter, envTracesProtocol)
	if err != nil {
		return nil, err
	}
	metrics, err := exporterNames(getenv, envMetricsExporter, envMetricsProtocol)
	if err != nil {
		return nil, err
	}
	if len(traces) == 0 && len(metrics) == 0 {
		return off, nil
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(append([]attribute.KeyValue{semconv.ServiceName(serviceName)}, attrs...)...),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (key=value pairs, comma-separated, values URL-encoded): %w", err)
	}
	tp, err := tracerProvider(ctx, traces, res, stdout)
	if err != nil {
		return nil, err
	}
	mp, err := meterProvider(ctx, metrics, res, stdout)
	if err != nil {
		if tp != nil {
			_ = tp.Shutdown(ctx)
		}
		return nil, err
	}
	installed.Lock()
	installed.traces, installed.metrics = tp, mp
	installed.Unlock()
	if tp != nil {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	}
	if mp != nil {
		otel.SetMeterProvider(mp)
	}
	return func(ctx context.Context) error {
		installed.Lock()
		if installed.traces == tp && installed.metrics == mp {
			installed.traces, installed.metrics = nil, nil
		}
		installed.Unlock()
		var errs []error
		if tp != nil {
			errs = append(errs, tp.Shutdown(ctx))
		}
		if mp != nil {
			errs = append(errs, mp.Shutdown(ctx))
		}
		return errors.Join(errs...)
	}, nil
}

// Flush exports every span and metric point buffered so far. A Lambda
// function calls it before it returns: the runtime may freeze the process
// until the next invocation, or for good. Without Setup it does nothing.
func Flush(ctx context.Context) error {
	installed.Lock()
	tp, mp := installed.traces, installed.metrics
	installed.Unlock()
	var errs []error
	if tp != nil {
		errs = append(errs, tp.ForceFlush(ctx))
	}
	if mp != nil {
		errs = append(errs, mp.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

// Flushing wraps a Lambda handler so that every invocation flushes before
// it returns (a flush that fails goes to the OpenTelemetry error handler:
// the invocation's own result stands).
func Flushing[E, R any](h func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	return func(ctx context.Context, event E) (R, error) {
		defer func() {
			if err := Flush(ctx); err != nil {
				otel.Handle(fmt.Errorf("flush telemetry before the invocation returns: %w", err))
			}
		}()
		return h(ctx, event)
	}
}

func tracerProvider(ctx context.Context, names []string, res *resource.Resource, stdout io.Writer) (*sdktrace.TracerProvider, error) {
	if len(names) == 0 {
		return nil, nil
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, name := range names {
		var exp sdktrace.SpanExporter
		var err error
		switch name {
		case exporterConsole:
			exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
		case exporterOTLP:
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", envTracesExporter, name, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

func meterProvider(ctx context.Context, names []string, res *resource.Resource, stdout io.Writer) (*sdkmetric.MeterProvider, error) {
	if len(names) == 0 {
		return nil, nil
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, name := range names {
		var exp sdkmetric.Exporter
		var err error
		switch name {
		case exporterConsole:
			exp, err = stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		case exporterOTLP:
			exp, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", envMetricsExporter, name, err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	return sdkmetric.NewMeterProvider(opts...), nil
}

// exporterNames reads an exporter list (OTEL_TRACES_EXPORTER or
// OTEL_METRICS_EXPORTER): console or otlp, each at most once, or none for
// an empty list. For otlp it checks the protocol, which the signal's own
// variable (protocolVar) sets before OTEL_EXPORTER_OTLP_PROTOCOL.
func exporterNames(getenv func(string) string, variable, protocolVar string) ([]string, error) {
	value := getenv(variable)
	var names []string
	for item := range strings.SplitSeq(value, ",") {
		name := strings.ToLower(strings.TrimSpace(item))
		switch name {
		case "", exporterNone:
			continue
		case exporterStdout:
			name = exporterConsole
		case exporterConsole:
		case exporterOTLP:
			if err := checkProtocol(getenv, protocolVar); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s=%q: %q is not an exporter Sluice has: use none (the default), console (or stdout) or otlp, or a comma-separated list of them", variable, value, strings.TrimSpace(item))
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

func checkProtocol(getenv func(string) string, signalVar string) error {
	for _, v := range []string{signalVar, envProtocol} {
		switch p := strings.TrimSpace(getenv(v)); p {
		case "":
			continue
		case protocolHTTP:
			return nil
		default:
			return fmt.Errorf("%s=%q is not supported: Sluice exports OTLP over HTTP only; set it to %s or leave it unset", v, p, protocolHTTP)
		}
	}
	return nil
}

// boolEnv reads a boolean variable as the SDK specification does: true or
// false, in any case; unset or empty is false.
func boolEnv(getenv func(string) string, variable string) (bool, error) {
	switch v := strings.TrimSpace(getenv(variable)); strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q is not a boolean: use true or false", variable, v)
	}
}
