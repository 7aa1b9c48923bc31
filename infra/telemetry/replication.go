package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/sluicedb/sluice/runtime"
)

// ObserveReplicator publishes a replicator's statistics as metrics, read
// from one snapshot of stats each time the meter collects:
//
//   - MetricLag: how far the target is behind the source, in seconds,
//     except during the full load.
//   - MetricAppliedRows: rows inserted, updated and deleted on the target
//     by the change stream, per table and db.operation.name (INSERT,
//     UPDATE, DELETE).
//   - MetricLoadedRows: rows the full load copied, per table. A table
//     reloaded by ReloadReplicationTables counts from zero again.
//   - MetricFullLoadProgress: per table, the rows loaded over the source's
//     estimate, from 0 to 1 (1 once the table is loaded); reported for the
//     tables this run loads.
//   - MetricBufferUsage and MetricBufferLimit: the change buffer's bytes,
//     once the change stream runs.
//   - MetricCapacity: the capacity units (DCU) units returns, when units is
//     not nil.
//
// The tables are the source's, as in DMS table statistics: db.namespace is
// the schema's (database|schema on PostgreSQL) and db.collection.name the
// table's. attrs go on every point; a db.namespace among them is the source
// database that qualifies the schemas, so DBAttributes(DB(engine,
// database)) of the source endpoint is what to pass.
//
// The meter provider's shutdown collects once more: a process that ends
// with its replication shuts the provider down and needs no Unregister
// (which, before the shutdown, would lose the last points). A process that
// outlives the replication unregisters when it ends.
func ObserveReplicator(meter metric.Meter, stats runtime.StatsReader, units func() int, attrs ...attribute.KeyValue) (metric.Registration, error) {
	o := &replicatorObserver{stats: stats, units: units, tables: map[[2]string]*tableAttrs{}}
	for _, a := range attrs {
		switch a.Key {
		case semconv.DBSystemNameKey:
			o.source.System = a.Value.AsString()
			o.common = append(o.common, a)
		case semconv.DBNamespaceKey:
			o.source.Database = a.Value.AsString()
		default:
			o.common = append(o.common, a)
		}
	}
	o.commonSet = attribute.NewSet(o.common...)
	var errs [7]error
	o.lag, errs[0] = meter.Float64ObservableGauge(MetricLag, metric.WithUnit("s"),
		metric.WithDescription("How far the target is behind the source: the age of the last applied source commit, 0 when caught up."))
	o.applied, errs[1] = meter.Int64ObservableCounter(MetricAppliedRows, metric.WithUnit("{row}"),
		metric.WithDescription("Rows the change stream inserted, updated and deleted on the target."))
	o.loaded, errs[2] = meter.Int64ObservableCounter(MetricLoadedRows, metric.WithUnit("{row}"),
		metric.WithDescription("Rows the full load copied to the target."))
	o.progress, errs[3] = meter.Float64ObservableGauge(MetricFullLoadProgress, metric.WithUnit("1"),
		metric.WithDescription("Rows loaded over the source's estimate of the table's rows, from 0 to 1."))
	o.bufferUsage, errs[4] = meter.Int64ObservableUpDownCounter(MetricBufferUsage, metric.WithUnit("By"),
		metric.WithDescription("Bytes of changes held in the change buffer between reader and applier."))
	o.bufferLimit, errs[5] = meter.Int64ObservableUpDownCounter(MetricBufferLimit, metric.WithUnit("By"),
		metric.WithDescription("The change buffer's budget (MemoryLimitTotal); reading pauses beyond it."))
	instruments := []metric.Observable{o.lag, o.applied, o.loaded, o.progress, o.bufferUsage, o.bufferLimit}
	if units != nil {
		o.capacity, errs[6] = meter.Int64ObservableUpDownCounter(MetricCapacity, metric.WithUnit("{dcu}"),
			metric.WithDescription("Capacity units (DCU, 2 GiB of memory each) the replication runs with."))
		instruments = append(instruments, o.capacity)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("create the replicator's instruments: %w", err)
	}
	reg, err := meter.RegisterCallback(o.observe, instruments...)
	if err != nil {
		return nil, fmt.Errorf("register the replicator's metrics: %w", err)
	}
	return reg, nil
}

type replicatorObserver struct {
	stats     runtime.StatsReader
	units     func() int
	source    runtime.DBName
	common    []attribute.KeyValue
	commonSet attribute.Set
	// tables caches the attribute sets of each source table, by schema
	// and name. Readers may collect at the same time, hence the lock.
	mu     sync.Mutex
	tables map[[2]string]*tableAttrs

	lag, progress                      metric.Float64ObservableGauge
	applied, loaded                    metric.Int64ObservableCounter
	bufferUsage, bufferLimit, capacity metric.Int64ObservableUpDownCounter
}

// tableAttrs are the measurement options of one table's points.
type tableAttrs struct {
	table, ins, upd, del metric.MeasurementOption
}

func (o *replicatorObserver) tableAttrs(schema, name string) *tableAttrs {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := [2]string{schema, name}
	if ta := o.tables[k]; ta != nil {
		return ta
	}
	base := append(append([]attribute.KeyValue(nil), o.common...),
		semconv.DBNamespace(o.source.Namespace(schema)), semconv.DBCollectionName(name))
	with := func(extra ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), extra...)...))
	}
	ta := &tableAttrs{
		table: with(),
		ins:   with(semconv.DBOperationName(opInsert)),
		upd:   with(semconv.DBOperationName(opUpdate)),
		del:   with(semconv.DBOperationName(opDelete)),
	}
	o.tables[k] = ta
	return ta
}

// observe reports one snapshot.
func (o *replicatorObserver) observe(_ context.Context, ob metric.Observer) error {
	s := o.stats.Snapshot()
	common := metric.WithAttributeSet(o.commonSet)
	loading := s.Phase == runtime.PhaseFullLoad // the statistics' phase has the stored phase's name
	if !loading {
		// During the full load nothing is applied yet: no lag to tell.
		ob.ObserveFloat64(o.lag, s.Lag.Seconds(), common)
	}
	if s.BufferLimit > 0 {
		ob.ObserveInt64(o.bufferUsage, s.BufferBytes, common)
		ob.ObserveInt64(o.bufferLimit, s.BufferLimit, common)
	}
	if o.units != nil {
		ob.ObserveInt64(o.capacity, int64(o.units()), common)
	}
	for _, t := range s.Tables {
		ta := o.tableAttrs(t.SchemaName, t.TableName)
		ob.ObserveInt64(o.applied, t.Inserts, ta.ins)
		ob.ObserveInt64(o.applied, t.Updates, ta.upd)
		ob.ObserveInt64(o.applied, t.Deletes, ta.del)
		ob.ObserveInt64(o.loaded, t.FullLoadRows, ta.table)
		if loading || !t.FullLoadStartTime.IsZero() {
			ob.ObserveFloat64(o.progress, progress(t), ta.table)
		}
	}
	return nil
}

// progress is a table's full-load progress, from 0 to 1. The estimate is
// the catalog's: a table whose estimate was low reaches 1 before it is
// loaded, one without an estimate stays at 0 until then.
func progress(t runtime.TableSnapshot) float64 {
	switch {
	case t.TableState == runtime.StateCompleted:
		return 1
	case t.EstimatedRows <= 0:
		return 0
	}
	return min(float64(t.FullLoadRows)/float64(t.EstimatedRows), 1)
}
