package runtime

import "time"

// Op is what a Change does.
type Op uint8

// The operations of the change stream. Begin and Commit frame a source
// transaction; the row operations between them belong to it.
const (
	OpBegin Op = iota + 1
	OpInsert
	OpUpdate
	OpDelete
	OpTruncate
	OpCommit
	// OpDDL changes a table's definition; Change.DDL says how.
	OpDDL
	// OpProgress says, between transactions, that every transaction whose
	// commit is before Position has been emitted: a source that knows it
	// while idle sends one, so validation can tell the stream has passed a
	// snapshot's position even when no transaction comes after it.
	OpProgress
)

func (o Op) String() string {
	switch o {
	case OpBegin:
		return "begin"
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
	case OpCommit:
		return "commit"
	case OpDDL:
		return "ddl"
	case OpProgress:
		return "progress"
	}
	return "unknown"
}

// ValueKind says whether a Value carries data.
type ValueKind uint8

// Value kinds. Unchanged marks a column whose value the source did not send
// because it did not change (PostgreSQL's unchanged TOAST): the target must
// keep what it has.
const (
	Null ValueKind = iota
	Text
	Unchanged
)

// Value is one column value in the text form of its type: the form the type's
// input function reads back exactly.
type Value struct {
	Kind ValueKind
	Data []byte
}

// Row holds one value per source column, in the order of Table.Columns.
type Row []Value

// Change is one element of the change stream.
//
// For OpInsert, New is the row. For OpUpdate, New is the new row and Old the
// old key (or the full old row under REPLICA IDENTITY FULL) when the source
// sent it, that is when the key changed; otherwise Old is nil and the key is in
// New. For OpDelete, Old holds the key (or the full row). For OpTruncate,
// Tables lists the truncated tables. For OpBegin and OpCommit, CommitTime is the
// source commit time; for OpCommit, Position is where the transaction ends:
// once it is applied, the stream may resume after it. For OpBegin, Position
// is where the transaction's commit is, the position Source.Snapshot
// compares with.
type Change struct {
	Op         Op
	Table      *Table
	Old, New   Row
	Tables     []*Table
	Position   Position
	CommitTime time.Time
	// DDL is set for OpDDL.
	DDL *DDL
	// Size approximates the memory the change holds, for the buffer's budget.
	Size int
}

// DDLKind is what a DDL change does.
type DDLKind uint8

// The table changes the stream carries.
const (
	DDLAddColumn   DDLKind = iota + 1 // New.Columns[Column] is new
	DDLDropColumn                     // Old.Columns[Column] is gone
	DDLAlterColumn                    // Old.Columns[OldColumn] is now New.Columns[Column]: type, nullability or name
	DDLRenameTable                    // Old is now named as New
	DDLDropTable                      // Old is gone
	DDLCreateTable                    // New is a new table (Old is nil)
)

// DDL is a change of a table's definition. The source makes a new Table for
// the new shape (Tables are never changed in place: changes before the DDL
// still point at the old one); the replicator gives it its target names
// before the applier sees it. Later row changes point at New.
type DDL struct {
	Kind     DDLKind
	Old, New *Table // New is nil for DDLDropTable, Old for DDLCreateTable
	// Column and OldColumn index the changed column (see DDLKind).
	Column, OldColumn int
	// Default is the target literal of an added column's value in the rows
	// that already exist, in its text form; Null when none.
	Default Value
	// Statement is the source's text, for messages.
	Statement string
}

// touched returns the tables c writes: a row change's table, a truncate's
// tables, a DDL's table (as it was, or the new one).
func (c *Change) touched() []*Table {
	switch {
	case c.Op == OpTruncate:
		return c.Tables
	case c.Op == OpDDL && c.DDL.Old != nil:
		return []*Table{c.DDL.Old}
	case c.Op == OpDDL:
		return []*Table{c.DDL.New}
	case c.Table != nil:
		return []*Table{c.Table}
	}
	return nil
}
