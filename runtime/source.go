package runtime

import (
	"context"
	"io"
	"time"
)

// CopyFormat is the row format of the full load: PostgreSQL's COPY text or
// binary format, which every source writes and every target reads.
type CopyFormat uint8

// Copy formats. Binary is faster; text is portable across type OIDs.
const (
	CopyText CopyFormat = iota
	CopyBinary
)

// Chunk is a part of a table that the full load copies on its own. Lo and Hi
// bound it in a unit the source defines (PostgreSQL: heap pages); a chunk with
// Count 1 is the whole table.
type Chunk struct {
	Table        *Table
	Index, Count int
	// Part names a part of the table the source reads on its own (a leaf
	// partition); empty for the table itself.
	Part   string
	Lo, Hi int64
}

// PrepareOptions says what Source.Prepare sets up.
type PrepareOptions struct {
	// Snapshot opens a consistent snapshot of the tables for Copy.
	Snapshot bool
	// Capture creates (or checks) what the change stream needs.
	Capture bool
	// Resume says the capture must already exist: the replication
	// continues from a stored position, and capture made anew would have
	// missed the changes in between.
	Resume bool
	// From is the position a CDC replication was asked to start at
	// (CdcStartPosition). A source that can read its history from there
	// (a binlog still on the server) returns it as the start position.
	From Position
	// FromTime asks for the first transaction committed at or after it
	// (CdcStartTime); a source that cannot find a position from a time
	// says so.
	FromTime time.Time
}

// Source is a database that Sluice reads: what the replicator asks of every
// source. What only some sources do, or only some callers need, is in small
// interfaces of its own (Acker, Checker), which the user asserts for.
type Source interface {
	// Tables lists the tables that selected accepts, with columns, keys,
	// constraints, indexes, sequences and the user types they use. Target
	// names equal source names; the replicator applies the mappings.
	Tables(ctx context.Context, selected func(schema, table string) bool) ([]*Table, []UserType, error)

	// Prepare sets up a replication of tables. With Capture, it creates (or
	// finds) the change capture (publication and slot) and returns the
	// position the change stream starts at. With Snapshot, the snapshot that
	// Copy reads is exactly at that position: every change before it is in
	// the snapshot and every change after it is in the stream, none in both.
	// Without Capture, the returned position is nil. The snapshot stays open
	// until EndSnapshot.
	Prepare(ctx context.Context, tables []*Table, opts PrepareOptions) (Position, error)

	// Chunks splits a table into parts of about chunkSize units that Copy
	// may read concurrently.
	Chunks(ctx context.Context, t *Table, chunkSize int64) ([]Chunk, error)

	// Copy writes the rows of one chunk, as of the snapshot, to w in format
	// f, columns in the order of t.Copied(). It is safe to call concurrently
	// for different chunks. It returns after the last byte is written.
	Copy(ctx context.Context, c Chunk, f CopyFormat, w io.Writer) error

	// Snapshot opens a snapshot for Copy at a new position and leaves the
	// change capture as it is: every transaction whose commit is before the
	// returned position is in the snapshot, no later one is. The change
	// stream still delivers both, so a table copied from this snapshot must
	// skip the earlier ones (see Change.Position of OpBegin). It stays open
	// until EndSnapshot.
	Snapshot(ctx context.Context) (Position, error)

	// EndSnapshot releases the snapshot. Copy must not be called after it.
	EndSnapshot(ctx context.Context) error

	// Stream emits the changes committed after from, in commit order, each
	// transaction framed by OpBegin and OpCommit, until ctx ends (then it
	// returns ctx.Err()) or it fails. A transaction is never split across
	// two calls: if Stream returns mid-transaction, the next call starts
	// again at a transaction boundary at or before it.
	Stream(ctx context.Context, from Position, tables []*Table, emit Emitter) error

	// SequenceValues returns the current value of each sequence the tables own.
	SequenceValues(ctx context.Context, tables []*Table) ([]SequenceValue, error)

	// Close releases connections. The change capture (a PostgreSQL slot
	// and publication) is kept so the replication can resume.
	Close(ctx context.Context) error
}

// Acker is a source that holds on to the changes it streamed until they
// are acknowledged: a PostgreSQL slot keeps the WAL from its confirmed
// position on. The replicator acknowledges a source that is one; the binlog
// keeps no reader's position, so a MySQL source is not.
type Acker interface {
	// Ack tells the source that every transaction up to and including pos is
	// durably applied, so it may release them. Safe to call concurrently with
	// Stream; positions passed only increase.
	Ack(pos Position)
}

// Checker is a source that can say, before a replication starts, whether its
// change stream would run: the pre-migration check asks it.
type Checker interface {
	// Check lists what would stop a change stream from this source (the
	// server's settings, the user's privileges, free resources), each
	// with its fix; none when all is well. It changes nothing.
	Check(ctx context.Context) []string
}

// Emitter receives the change stream. Emit blocks while the buffer is full and
// returns ctx.Err() if ctx ends while it waits. The emitter owns the change
// after Emit returns.
type Emitter interface {
	Emit(ctx context.Context, c *Change) error
}

// SequenceValue is a sequence's state to carry to the target.
type SequenceValue struct {
	Schema, Name string // target sequence; empty for an identity column's
	// Table and Column name an identity column, whose sequence the target
	// finds itself.
	Table     *Table
	Column    string
	LastValue int64
	IsCalled  bool
}
