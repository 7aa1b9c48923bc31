package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Phase is where a replication is: stored with the position on the
// target, and reported in its statistics.
type Phase string

// The phases. The first three are stored on the target; the last is a
// statistics phase only.
const (
	PhaseFullLoad Phase = "full-load" // started; not finished: a restart reloads
	PhaseCDC      Phase = "cdc"       // full load done (or none); the position is where changes resume
	PhaseDone     Phase = "done"      // full-load only replication finished
	// PhaseStoppedAtCommitTime is a replicator that ended at its
	// CdcStopPosition commit_time.
	PhaseStoppedAtCommitTime Phase = "stopped-at-commit-time"
)

// State is what the target stores about a replication, in its control table.
type State struct {
	Phase    Phase
	Position Position // nil when none yet
	// Reload is the last reload of single tables, nil if none.
	Reload *Reload
	// Suspended maps the tables the replication no longer writes, by
	// source name (schema.table), to why (ErrorBehavior's SUSPEND_TABLE);
	// a reload of the table brings it back.
	Suspended map[string]string
	// Counts are the tables' counters as of Position, by source name:
	// nil when none are stored (a new replication, or a target written by
	// a version before them).
	Counts map[string]Counts
}

// Reload is a reload of some tables while the replication goes on
// (ReloadReplicationTables). It is stored with the position so that a
// replicator stopped in the middle of it finishes it, and one that resumes
// after it skips the changes its copies already hold.
type Reload struct {
	// Token names the request, so that each is carried out once.
	Token string
	// Tables maps each table's source name (schema.table) to the position
	// its copy was taken at: the copy holds every transaction committed
	// before it. Nil while the copy is being made.
	Tables map[string]Position
}

type reloadJSON struct {
	Token  string
	Tables map[string]string // checkpoint strings; "" while copying
}

// MarshalJSON stores positions as checkpoint strings.
func (r *Reload) MarshalJSON() ([]byte, error) {
	out := reloadJSON{Token: r.Token, Tables: map[string]string{}}
	for t, p := range r.Tables {
		out.Tables[t] = ""
		if p != nil {
			out.Tables[t] = Checkpoint(p)
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Reload) UnmarshalJSON(b []byte) error {
	var in reloadJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	r.Token, r.Tables = in.Token, map[string]Position{}
	for t, cp := range in.Tables {
		r.Tables[t] = nil
		if cp == "" {
			continue
		}
		p, err := ParsePosition(cp)
		if err != nil {
			return fmt.Errorf("reload position of %s: %w", t, err)
		}
		r.Tables[t] = p
	}
	return nil
}

// Target is a database that Sluice writes.
type Target interface {
	// State returns what is stored for task, or a zero State if nothing is.
	State(ctx context.Context, task string) (State, error)

	// SaveState stores st for task in its own transaction.
	SaveState(ctx context.Context, task string, st State) error

	// PrepareTables makes the tables ready for a full load per mode
	// (PrepDropAndCreate, PrepTruncateBeforeLoad, PrepDoNothing): it creates
	// schemas, the user types and sequences, and tables with their primary
	// keys. Constraints and secondary indexes wait for FinishTables.
	PrepareTables(ctx context.Context, types []UserType, tables []*Table, mode string) error

	// ReadsBinary says whether Load reads CopyBinary; every target reads
	// CopyText.
	ReadsBinary() bool

	// Load reads rows in format f from r into t, columns in the order of
	// t.Copied(), and returns how many it wrote. Calls for different chunks,
	// of one table or several, may run concurrently. Rows are durable once
	// a later SaveState returns.
	Load(ctx context.Context, t *Table, f CopyFormat, r io.Reader) (int64, error)

	// FinishTables creates constraints and, if indexes is true, secondary
	// indexes, after the load.
	FinishTables(ctx context.Context, tables []*Table, indexes bool) error

	// RecordExceptions deletes task's rows of the tables in clear from
	// awsdms_apply_exceptions, then writes xs, in a transaction of its
	// own: the full load's refused rows. A table loaded again starts
	// with none: they were rows of the copy it replaces.
	RecordExceptions(ctx context.Context, task string, clear []*Table, xs []Exception) error

	// SetSequences sets each sequence to the source's value.
	SetSequences(ctx context.Context, seqs []SequenceValue) error

	// Applier returns the writer of the change stream for task.
	Applier(ctx context.Context, task string, tables []*Table, opts ApplyOptions, stats *Stats) (Applier, error)

	Close(ctx context.Context) error
}

// ApplyOptions say how an Applier writes.
type ApplyOptions struct {
	// Batch merges the net changes per table and key and writes them in
	// bulk (BatchApplyEnabled).
	Batch bool
	// MemoryLimit caps, in bytes, the changes a batch applier holds; past
	// it, it writes them into the open target transaction.
	MemoryLimit int64
	// Inserts, Updates and Deletes say what an insert that finds its key
	// taken, and an update or delete that finds no row, do.
	Inserts, Updates, Deletes Conflict
}

// Conflict is how an applier writes a change whose row is not on the
// target as the source had it.
type Conflict uint8

// The ways.
const (
	// ConflictSkip does nothing to the row and counts it in the table's
	// ApplyMisses.
	ConflictSkip Conflict = iota
	// ConflictReport does nothing to the row and reports it: Apply with
	// an error Classify calls KindConflict (the transaction may then be
	// unusable), Try with a *RowError.
	ConflictReport
	// ConflictOverwrite makes an insert overwrite the row with its key.
	ConflictOverwrite
)

// Applier writes changes to the target in transactions it commits together
// with the position they reach.
type Applier interface {
	// Apply adds one row change (insert, update, delete or truncate) to the
	// open target transaction, opening one if none is open. Changes come in
	// source commit order. Apply may hold changes back and write them at
	// Commit; an error leaves the transaction unusable until Rollback.
	Apply(ctx context.Context, c *Change) error

	// Commit writes what is held and commits it together with pos as the
	// task's position, atomically: after a crash either both are on the
	// target or neither is. commitTime is the source commit time of pos;
	// counts are the counters, as of pos, of the tables the transaction
	// changed, stored over theirs in State.Counts. Commit may return before the transaction is durable (an asynchronous
	// commit); Durable says when it is.
	Commit(ctx context.Context, pos Position, commitTime time.Time, counts map[string]Counts) error

	// Durable returns the last committed position that a crash of the
	// target can no longer lose, or nil if none is yet. The source is
	// acknowledged only up to it.
	Durable(ctx context.Context) (Position, error)

	// Try applies c at once and alone. If the target refuses it, or finds
	// its row not as the source had it (ApplyOptions), Try undoes c only
	// and returns a *RowError: the open transaction keeps every change
	// before c and goes on. Other errors leave it as Apply's do.
	Try(ctx context.Context, c *Change) error

	// Except writes x to the control schema's awsdms_apply_exceptions in
	// the open transaction, and Suspend records table t as suspended,
	// with why, in awsdms_suspended_tables: both commit with the position
	// that passes the change, or not at all.
	Except(ctx context.Context, x Exception) error
	Suspend(ctx context.Context, t *Table, reason string) error

	// Rollback discards everything applied since the last Commit.
	Rollback(ctx context.Context) error

	Close(ctx context.Context) error
}
