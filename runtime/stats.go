package runtime

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Table states, as DMS reports them in table statistics.
const (
	StateBeforeLoad = "Before load"
	StateLoading    = "Full load"
	StateCompleted  = "Table completed"
	StateError      = "Table error"
)

// TableStats counts what happened to one table. Counters are atomic so the
// loaders and the applier update them without a lock.
type TableStats struct {
	Schema, Name string // source names
	FullLoadRows atomic.Int64
	Inserts      atomic.Int64
	Updates      atomic.Int64
	Deletes      atomic.Int64
	DDLs         atomic.Int64
	// ApplyMisses counts the conflicts: updates and deletes that found no
	// target row, inserts that found their key taken. ApplyErrors counts
	// the changes the target refused (ErrorBehavior's data and table
	// errors) that were left out.
	ApplyMisses atomic.Int64
	ApplyErrors atomic.Int64
	// EstimatedRows is the source's row estimate when the table was
	// listed: what a full-load progress bar measures against.
	EstimatedRows atomic.Int64
	state         atomic.Value // string
	stateDetails  atomic.Value // string: why the table is in error
	warnings      atomic.Value // []string
	LoadStarted   atomic.Int64 // unix nanos
	LoadFinished  atomic.Int64 // unix nanos
	validation    atomic.Pointer[ValidationStats]
}

// SetValidation replaces the table's validation statistics.
func (t *TableStats) SetValidation(v ValidationStats) { t.validation.Store(&v) }

// Validation returns the table's validation statistics; State is empty
// when validation is off.
func (t *TableStats) Validation() ValidationStats {
	if v := t.validation.Load(); v != nil {
		return *v
	}
	return ValidationStats{}
}

// State returns the table state.
func (t *TableStats) State() string {
	if s, ok := t.state.Load().(string); ok {
		return s
	}
	return StateBeforeLoad
}

// SetState sets the table state.
func (t *TableStats) SetState(s string) {
	t.state.Store(s)
	if s != StateError {
		t.stateDetails.Store("")
	}
}

// SetError puts the table in error, for the reason why.
func (t *TableStats) SetError(why string) {
	t.state.Store(StateError)
	t.stateDetails.Store(why)
}

// StateDetails says why the table is in error; "" when it is not.
func (t *TableStats) StateDetails() string {
	s, _ := t.stateDetails.Load().(string)
	return s
}

// Stats holds the statistics of one replication. The control plane reads them
// through Snapshot; the replicator writes them.
type Stats struct {
	mu     sync.Mutex
	tables map[string]*TableStats
	// lastCommit is the source commit time (unix nanos) of the last applied
	// transaction; caughtUp is set when the stream has nothing newer.
	lastCommit atomic.Int64
	caughtUp   atomic.Bool
	applied    atomic.Value // string: checkpoint of the last applied position
	// reached is the position before which every source transaction is
	// applied (posBox): the last commit's, or a source's idle progress.
	reached atomic.Value
	phase   atomic.Value // string
	// BufferBytes and BufferLimit are the change buffer's use and budget;
	// cpuMilli is the cores the process used lately, in thousandths (set
	// by whoever measures the process).
	BufferBytes, BufferLimit atomic.Int64
	cpuMilli                 atomic.Int64
	// cumulative is set once the counters were restored from the target
	// (Restore).
	cumulative atomic.Bool
}

// SetCPU records how many cores the replicator used lately.
func (s *Stats) SetCPU(cores float64) { s.cpuMilli.Store(int64(cores * 1000)) }

// NewStats returns empty statistics.
func NewStats() *Stats { return &Stats{tables: map[string]*TableStats{}} }

// Table returns the statistics of a source table, creating them on first use.
func (s *Stats) Table(schema, name string) *TableStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := schema + "." + name
	t := s.tables[k]
	if t == nil {
		t = &TableStats{Schema: schema, Name: name}
		s.tables[k] = t
	}
	return t
}

// Warn adds a warning to a table's statistics.
func (t *TableStats) Warn(msg string) {
	old, _ := t.warnings.Load().([]string)
	for _, w := range old {
		if w == msg {
			return
		}
	}
	t.warnings.Store(append(append([]string(nil), old...), msg))
}

// TableSnapshot is a copy of one table's statistics.
type TableSnapshot struct {
	SchemaName, TableName                   string
	FullLoadRows, Inserts, Updates, Deletes int64
	DDLs, ApplyMisses, ApplyErrors          int64
	EstimatedRows                           int64
	TableState                              string
	// TableStateDetails says why a table is in error.
	TableStateDetails                  string `json:",omitempty"`
	FullLoadStartTime, FullLoadEndTime time.Time
	Warnings                           []string
	Validation                         ValidationStats
}

// Snapshot is a copy of a replication's statistics.
type Snapshot struct {
	Phase      Phase
	Checkpoint string
	// Lag is how far the target is behind the source: zero when caught up,
	// else the age of the last applied source commit.
	Lag    time.Duration
	Tables []TableSnapshot
	// The utilization the autoscaler reads: the change buffer's use and
	// budget in bytes, and the cores the replicator used lately.
	BufferBytes, BufferLimit int64   `json:",omitempty"`
	CPU                      float64 `json:",omitempty"`
	// Cumulative says the counters count from the replication's start:
	// the run restored them from the counts its target stored with the
	// position. Otherwise they count from this run's start.
	Cumulative bool `json:",omitempty"`
}

// StatsReader is how the control plane reads a running replication.
type StatsReader interface {
	Snapshot() Snapshot
}

var _ StatsReader = (*Stats)(nil)

// Snapshot implements StatsReader.
func (s *Stats) Snapshot() Snapshot {
	var out Snapshot
	out.Phase, _ = s.phase.Load().(Phase)
	out.Checkpoint, _ = s.applied.Load().(string)
	out.BufferBytes, out.BufferLimit = s.BufferBytes.Load(), s.BufferLimit.Load()
	out.CPU = float64(s.cpuMilli.Load()) / 1000
	out.Cumulative = s.cumulative.Load()
	if c := s.lastCommit.Load(); c != 0 && !s.caughtUp.Load() {
		out.Lag = time.Since(time.Unix(0, c))
	}
	s.mu.Lock()
	for _, t := range s.tables {
		ts := TableSnapshot{
			SchemaName: t.Schema, TableName: t.Name,
			FullLoadRows: t.FullLoadRows.Load(), Inserts: t.Inserts.Load(),
			Updates: t.Updates.Load(), Deletes: t.Deletes.Load(), DDLs: t.DDLs.Load(),
			ApplyMisses: t.ApplyMisses.Load(), ApplyErrors: t.ApplyErrors.Load(),
			TableState: t.State(), TableStateDetails: t.StateDetails(),
			EstimatedRows: t.EstimatedRows.Load(),
		}
		ts.Warnings, _ = t.warnings.Load().([]string)
		ts.Validation = t.Validation()
		if v := t.LoadStarted.Load(); v != 0 {
			ts.FullLoadStartTime = time.Unix(0, v)
		}
		if v := t.LoadFinished.Load(); v != 0 {
			ts.FullLoadEndTime = time.Unix(0, v)
		}
		out.Tables = append(out.Tables, ts)
	}
	s.mu.Unlock()
	sort.Slice(out.Tables, func(i, j int) bool {
		a, b := out.Tables[i], out.Tables[j]
		if a.SchemaName != b.SchemaName {
			return a.SchemaName < b.SchemaName
		}
		return a.TableName < b.TableName
	})
	return out
}

func (s *Stats) setPhase(p Phase) { s.phase.Store(p) }

// posBox holds a Position in an atomic.Value, which needs one concrete type.
type posBox struct{ p Position }

// Reached returns the position before which every source transaction has
// been applied to the target, nil before the first.
func (s *Stats) Reached() Position {
	b, _ := s.reached.Load().(posBox)
	return b.p
}

func (s *Stats) recordReached(p Position) {
	if cur := s.Reached(); cur == nil || cur.Kind() != p.Kind() || p.Compare(cur) > 0 {
		s.reached.Store(posBox{p})
	}
}

func (s *Stats) recordApplied(pos Position, commit time.Time, caughtUp bool) {
	s.recordReached(pos)
	s.applied.Store(Checkpoint(pos))
	s.lastCommit.Store(commit.UnixNano())
	s.caughtUp.Store(caughtUp)
}
