package runtime

import (
	"context"
	"errors"
	"time"
)

// ReadSession is one read-only session on a consistent snapshot of a source
// or a target, which validation queries.
type ReadSession interface {
	// Position is where the snapshot is. A source's snapshot holds every
	// transaction whose OpBegin position is before it, and no later one. A
	// target's is the position stored with the task (an OpCommit
	// position, nil if none): it holds exactly the transactions applied up
	// to it.
	Position() Position
	// Query runs q and calls row for each row it returns, every value in
	// text form, nil for NULL. The values are only valid during the call.
	Query(ctx context.Context, q string, row func(vals [][]byte) error) error
	// Close ends the snapshot.
	Close(ctx context.Context) error
}

// CloseSessions closes every session of ss, even when ctx has ended.
func CloseSessions(ctx context.Context, ss []ReadSession) {
	for _, s := range ss {
		_ = s.Close(context.WithoutCancel(ctx))
	}
}

// Dialects of ReadSession SQL.
const (
	DialectPostgres = "postgres"
	DialectMySQL    = "mysql"
)

// SnapshotReader is a source or target that validation can read.
type SnapshotReader interface {
	// Dialect is the SQL the sessions speak (DialectPostgres,
	// DialectMySQL).
	Dialect() string
	// ReadSnapshots opens n sessions. Where the database can share one
	// snapshot between sessions (PostgreSQL) they share it; otherwise each
	// has its own, at its own Position. Task names the replication whose
	// stored position a target's sessions report. Without positioned, a
	// source may leave Position nil, when a snapshot without one is
	// cheaper (no change stream runs to compare it with).
	ReadSnapshots(ctx context.Context, task string, n int, positioned bool) ([]ReadSession, error)
}

// Failure types of awsdms_validation_failures_v1, as DMS names them.
const (
	MissingTarget = "MISSING_TARGET"
	MissingSource = "MISSING_SOURCE"
	RecordDiff    = "RECORD_DIFF"
)

// ValidationFailure is one row of awsdms_validation_failures_v1.
type ValidationFailure struct {
	TableOwner, TableName string // source schema and table
	Time                  time.Time
	KeyType               string // "Row"
	Key                   string // {"key":["42"]}
	FailureType           string // MissingTarget, MissingSource or RecordDiff
	Details               string
}

// FailureRecorder is a target that keeps validation failures in its
// control table awsdms_validation_failures_v1.
type FailureRecorder interface {
	// RecordValidationFailures adds fs for task; with clear, it first
	// drops what was recorded for those tables before (a table validated
	// again from the start).
	RecordValidationFailures(ctx context.Context, task string, clear []string, fs []ValidationFailure) error
}

// Validation compares the target with the source; runtime/validate
// implements it. The replicator runs it beside the change stream.
type Validation interface {
	// Tables validates tables whole (after their full load, or asked for
	// by a validate-only reload) and returns when that is done; rows that
	// were changing are left to Follow.
	Tables(ctx context.Context, tables []*Table) error
	// Follow validates the rows the change stream writes until ctx ends.
	Follow(ctx context.Context, tables []*Table) error
}

// Validation states, as DMS reports them in table statistics. DMS's "No
// primary key" does not occur: a keyless table is compared as a multiset
// of rows. A table that cannot be compared is Error with the reason; Table
// error is a table whose replication failed (its TableState).
const (
	ValidationNotEnabled = "Not enabled"
	ValidationPending    = "Pending records"
	ValidationMismatched = "Mismatched records"
	ValidationSuspended  = "Suspended records"
	ValidationTableError = "Table error"
	ValidationValidated  = "Validated"
	ValidationError      = "Error"
)

// ValidationStats is a table's validation, as the statistics report it.
type ValidationStats struct {
	State                            string
	Pending, Failed, Suspended       int64
	Details                          string
	LastValidated                    time.Time
	ComparedRows, RowsFetched, Bytes int64 // work done, for benchmarks and tests
}

// RowFetcher is a source that reads rows by key in the change stream's
// form, for repair.
type RowFetcher interface {
	// FetchRows returns the current rows of t whose key columns hold the
	// values of keys (each a Row with its key columns set), in any order;
	// keys no row has are left out.
	FetchRows(ctx context.Context, t *Table, keys []Row) ([]Row, error)
}

// Repair is a set of row writes validation asks the applier to make on the
// target, between source transactions, in a target transaction committed
// at the position already applied: fencing holds, and the stream's later
// changes land on top of them.
type Repair struct {
	Changes []*Change
	// Still says, in the applier's goroutine, right before the writes,
	// whether they are still right: no transaction applied since the rows
	// were found different has written them.
	Still func() bool
	done  chan error
}

// errRepairStale is a repair that a change applied since made moot.
var errRepairStale = errors.New("the rows changed since they were compared")

// RepairRows asks the running change stream's applier to make the writes
// of rp, and waits for them to be committed. It returns ErrRepairStale
// when Still said no, and an error when no stream runs.
func (r *Replicator) RepairRows(ctx context.Context, rp *Repair) error {
	rp.done = make(chan error, 1)
	select {
	case r.repairs <- rp:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-rp.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsRepairStale says whether err is a repair that was not made because
// the rows changed since they were compared.
func IsRepairStale(err error) bool { return errors.Is(err, errRepairStale) }
