package telemetry

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sluicedb/sluice/infra/telemetry/telemetrytest"
	"github.com/sluicedb/sluice/runtime"
)

func TestObserveReplicator(t *testing.T) {
	stats := runtime.NewStats()
	orders := stats.Table("shop", "orders")
	orders.EstimatedRows.Store(200)
	orders.FullLoadRows.Store(50)
	orders.LoadStarted.Store(1)
	orders.Inserts.Store(7)
	orders.Deletes.Store(2)
	done := stats.Table("shop", "items")
	done.FullLoadRows.Store(10)
	done.LoadStarted.Store(1)
	done.SetState(runtime.StateCompleted)
	stats.BufferBytes.Store(4096)
	stats.BufferLimit.Store(256 << 20)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg, err := ObserveReplicator(mp.Meter("test"), stats, func() int { return 4 },
		append(DBAttributes(DB("postgres", "sales")), ReplicationKey.String("orders-to-dw"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	points := telemetrytest.Points(t, reader)

	ordersAttrs := map[string]string{"db.system.name": "postgresql", "db.namespace": "sales|shop", "db.collection.name": "orders", "sluice.replication.id": "orders-to-dw"}
	for _, c := range []struct {
		metric string
		attrs  map[string]string
		want   float64
	}{
		{MetricLoadedRows, ordersAttrs, 50},
		{MetricAppliedRows, with(ordersAttrs, "db.operation.name", "INSERT"), 7},
		{MetricAppliedRows, with(ordersAttrs, "db.operation.name", "UPDATE"), 0},
		{MetricAppliedRows, with(ordersAttrs, "db.operation.name", "DELETE"), 2},
		{MetricFullLoadProgress, ordersAttrs, 0.25},
		// A loaded table is done, whatever its estimate said.
		{MetricFullLoadProgress, with(ordersAttrs, "db.collection.name", "items"), 1},
		// The replication-wide points carry no table.
		{MetricBufferUsage, map[string]string{"db.system.name": "postgresql", "sluice.replication.id": "orders-to-dw"}, 4096},
		{MetricBufferLimit, map[string]string{"db.system.name": "postgresql", "sluice.replication.id": "orders-to-dw"}, 256 << 20},
		{MetricCapacity, map[string]string{"db.system.name": "postgresql", "sluice.replication.id": "orders-to-dw"}, 4},
		{MetricLag, map[string]string{"db.system.name": "postgresql", "sluice.replication.id": "orders-to-dw"}, 0},
	} {
		got, ok := telemetrytest.Find(points[c.metric], c.attrs)
		if !ok {
			t.Errorf("%s%v: no point (points: %v)", c.metric, c.attrs, points[c.metric])
			continue
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metric, c.attrs, got, c.want)
		}
	}
}

// TestDBNamespace checks the namespaces of the semantic conventions:
// PostgreSQL qualifies the schema by the database, MySQL's schema is the
// database.
func TestDBNamespace(t *testing.T) {
	for _, c := range []struct {
		engine, database, schema, want string
	}{
		{"postgres", "sales", "public", "sales|public"},
		{"aurora-postgresql", "sales", "", "sales"},
		{"postgres", "", "public", "public"},
		{"mysql", "ignored", "shop", "shop"},
		{"mariadb", "", "shop", "shop"},
	} {
		if got := DB(c.engine, c.database).Namespace(c.schema); got != c.want {
			t.Errorf("DB(%q, %q).Namespace(%q) = %q, want %q", c.engine, c.database, c.schema, got, c.want)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		if mk != k {
			out[mk] = mv
		}
	}
	return out
}
