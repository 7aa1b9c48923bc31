// Package telemetrytest reads the metric points an in-memory reader
// collected, for the tests of the telemetry package and of a whole
// replication.
package telemetrytest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Point is one metric point.
type Point struct {
	Attrs attribute.Set
	Value float64
}

// Points reads every point reader has, by metric name. A kind of data
// Sluice does not record (anything but int64 sums and float64 gauges) fails
// the test.
func Points(tb testing.TB, reader *sdkmetric.ManualReader) map[string][]Point {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	out := map[string][]Point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], Point{p.Attributes, float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], Point{p.Attributes, p.Value})
				}
			default:
				tb.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// Find returns the value of the point whose attributes are exactly attrs.
func Find(points []Point, attrs map[string]string) (float64, bool) {
	for _, p := range points {
		if p.Attrs.Len() != len(attrs) {
			continue
		}
		match := true
		for k, v := range attrs {
			if got, ok := p.Attrs.Value(attribute.Key(k)); !ok || got.String() != v {
				match = false
			}
		}
		if match {
			return p.Value, true
		}
	}
	return 0, false
}
