// Package telemetry connects Sluice to OpenTelemetry. Setup turns the
// standard OTEL_* environment variables into the global tracer and meter
// providers (nothing is exported unless they ask for it), Flush pushes out
// what is buffered before a Lambda invocation returns, and
// ObserveReplicator publishes a replicator's statistics snapshot as
// metrics. The spans themselves are started where the work happens, with
// the global providers: the API, the analysis, the runner and the
// replicator (runtime, whose spans name the target through
// runtime.WithTraceTarget).
package telemetry
