package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/sluicedb/sluice/runtime"
)

// Metric names, following the OpenTelemetry naming guidelines: a singular
// namespace per thing measured (one replication), snake_case words, units
// in the instrument's metadata rather than in the name, no _total.
const (
	MetricLag              = "sluice.replication.lag"                // s, gauge
	MetricAppliedRows      = "sluice.replication.applied_rows"       // {row}, counter
	MetricLoadedRows       = "sluice.replication.loaded_rows"        // {row}, counter
	MetricFullLoadProgress = "sluice.replication.full_load.progress" // 1 (a ratio, 0 to 1), gauge
	MetricBufferUsage      = "sluice.replication.buffer.usage"       // By, up-down counter
	MetricBufferLimit      = "sluice.replication.buffer.limit"       // By, up-down counter
	MetricCapacity         = "sluice.replication.capacity"           // {dcu}, up-down counter
)

// Attribute keys of Sluice's own, beside the semantic conventions'. (The
// replicator's span attributes are runtime's: runtime cannot import this
// package, which reads its statistics.)
const (
	// ReplicationKey identifies a replication: its
	// ReplicationConfigIdentifier. A replicator process owns one, so it
	// belongs on the process's resource (Setup's attrs).
	ReplicationKey = attribute.Key("sluice.replication.id")
	// TablesKey is how many tables an analysis found.
	TablesKey = attribute.Key("sluice.tables")
	// ProblemsKey is how many problems a pre-migration check found.
	ProblemsKey = attribute.Key("sluice.problems")
	// LauncherKey is what started a replicator: local or ecs.
	LauncherKey = attribute.Key("sluice.launcher")
	// UnitsKey is the capacity units (DCU) a replicator is launched with.
	UnitsKey = attribute.Key("sluice.capacity_units")
)

// Values of db.operation.name on MetricAppliedRows.
const (
	opInsert = "INSERT"
	opUpdate = "UPDATE"
	opDelete = "DELETE"
)

// DBSystem is the db.system.name of a DMS EngineName: postgresql, mysql or
// mariadb, and other_sql for engines Sluice does not know.
func DBSystem(engine string) string {
	switch engine {
	case "postgres", "aurora-postgresql":
		return semconv.DBSystemNamePostgreSQL.Value.AsString()
	case "mysql", "aurora":
		return semconv.DBSystemNameMySQL.Value.AsString()
	case "mariadb":
		return semconv.DBSystemNameMariaDB.Value.AsString()
	}
	return semconv.DBSystemNameOtherSQL.Value.AsString()
}

// DB names an endpoint's database (EngineName and DatabaseName, as DMS
// has them) for telemetry. MySQL endpoints have no database: their
// databases are the schemas the table mappings select.
func DB(engine, database string) runtime.DBName {
	d := runtime.DBName{System: DBSystem(engine)}
	if d.System == semconv.DBSystemNamePostgreSQL.Value.AsString() {
		d.Database = database
	}
	return d
}

// DBAttributes are the db.system.name and, when it has one, db.namespace
// of a database.
func DBAttributes(d runtime.DBName) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.DBSystemNameKey.String(d.System)}
	if ns := d.Namespace(""); ns != "" {
		attrs = append(attrs, semconv.DBNamespace(ns))
	}
	return attrs
}
