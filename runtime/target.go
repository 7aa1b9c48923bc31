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
}

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
	// target or neither is. commitTime is the source commit time of pos.
	// Commit may return before the transaction is durable (an asynchronous
	// commit); Durable says when it is.
	Commit(ctx context.Context, pos Position, commitTime time.Time) error

	// Durable returns the last committed position that a crash of the
	// target can no longer lose, or nil if none is yet. The source is
	// acknowledged only up to it.
	Durable(ctx context.Context) (Position, error)

	// Rollback discards everything applied since the last Commit.
	Rollback(ctx context.Context) error

	Close(ctx context.Context) error
}
