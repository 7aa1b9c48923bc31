package runtime

// Table describes one selected source table and what it becomes on the target.
// Sources fill it from their catalog; the mappings set the target names; the
// target creates and loads it. It is read-only once the replication starts.
type Table struct {
	SourceSchema, SourceName string
	Schema, Name             string // target names, after the table mappings

	Columns []Column
	// Key lists the indexes in Columns of the columns that identify a row
	// (primary key, else the replica identity index); empty when none.
	Key []int
	// HasPrimaryKey is false when Key comes from a unique index, or is empty.
	HasPrimaryKey bool
	// Identity is how the source identifies rows in updates and deletes.
	Identity Identity

	// PartitionBy is the partition key definition ("RANGE (created)") of a
	// partitioned table; Partitions its partitions, created on the target with it.
	PartitionBy string
	Partitions  []Partition

	// Constraints are table constraints other than the primary key
	// (UNIQUE, CHECK, EXCLUDE) in SQL, built after the load.
	Constraints []Constraint
	// Indexes are secondary indexes (CREATE INDEX statements for the target),
	// built after the load when the settings ask for them.
	Indexes []Index
	// Sequences are the sequences owned by the table's columns.
	Sequences []Sequence

	// EstimatedRows and Pages size the full load and its chunks.
	EstimatedRows int64
	Pages         int64
	// BinaryCopy is true when every column's binary form is portable between
	// databases (no user-defined types, whose binary forms carry OIDs).
	BinaryCopy bool

	// Warnings are reported in the table's statistics.
	Warnings []string
}

// Identity is how a source identifies the rows its updates and deletes touch.
type Identity uint8

// Identities. IdentityNone means updates and deletes cannot be replicated.
const (
	IdentityKey Identity = iota
	IdentityFull
	IdentityNone
)

// Column is one source column and its target form.
type Column struct {
	SourceName string
	Name       string // target name
	// Removed is set by a remove-column transformation: the column is not
	// created or written on the target.
	Removed bool
	// Type is the SQL type as a PostgreSQL target declares it.
	Type string
	// MySQLType is the type as a MySQL or MariaDB source declares it
	// (COLUMN_TYPE: int(10) unsigned, enum('a','b')), which a MySQL target
	// declares as it is; empty for other sources.
	MySQLType string
	TypeOID   uint32
	NotNull   bool
	// Default is the SQL default expression, already rewritten for the target.
	Default string
	// Generated is the expression of a stored generated column. Generated
	// columns are not copied: the target computes them.
	Generated string
	// Identity is 'a' (ALWAYS), 'd' (BY DEFAULT) or 0.
	Identity byte
}

// Partition is one partition of a partitioned table.
type Partition struct {
	SourceSchema, SourceName string
	Schema, Name             string
	Bound                    string // FOR VALUES ... or DEFAULT
	PartitionBy              string // set when the partition is itself partitioned
	Partitions               []Partition
}

// Constraint is a named table constraint.
type Constraint struct {
	Name string
	Def  string // UNIQUE (a, b), CHECK (...), ...
}

// TablePlaceholder stands for the target table in Index.Def; the target
// replaces it with the table's quoted target name.
const TablePlaceholder = "{{table}}"

// Index is a secondary index.
type Index struct {
	Name string
	Def  string // CREATE INDEX statement, ON TablePlaceholder
}

// Sequence is a sequence owned by a column.
type Sequence struct {
	SourceSchema, SourceName string
	Schema, Name             string
	Column                   string // owning column (source name); empty when not owned
	As                       string // the sequence's data type
	Def                      string // INCREMENT BY ... CYCLE: options of CREATE SEQUENCE and of identity columns
	// Owned is false for a sequence the table's defaults use without owning
	// it; it keeps its source schema, and other tables may share it.
	Owned bool
	// Identity is set for the sequence behind an identity column, which the
	// target creates with the column.
	Identity bool
}

// QualifiedSource is schema.table as the user names it, for messages.
func (t *Table) QualifiedSource() string { return t.SourceSchema + "." + t.SourceName }

// Copied returns the indexes of the columns the full load and apply write:
// not removed and not generated.
func (t *Table) Copied() []int {
	var idx []int
	for i, c := range t.Columns {
		if !c.Removed && c.Generated == "" {
			idx = append(idx, i)
		}
	}
	return idx
}

// UserType is a type the source defines (enum, domain, composite, range) that
// the tables use; the target creates it before the tables.
type UserType struct {
	Schema, Name string
	Def          string // complete CREATE statement
}
