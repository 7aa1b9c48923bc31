package runtime

import (
	"encoding/json"
	"fmt"
)

// Counts are one table's counters as the target stores them with the
// position, so that the statistics survive a crash exactly as the data
// does: a replicator resuming from a position counts on from the counts
// committed with it, neither losing the changes it applied after its last
// report nor counting twice the ones it applies again. The conflicts
// (ApplyMisses) are not among them: the target finds those while it
// commits, too late for the statement that stores the counts.
type Counts struct {
	FullLoadRows, Inserts, Updates, Deletes, DDLs, ApplyErrors int64
}

// MarshalJSON stores the counts as an array, small in a row updated at
// every commit.
func (c Counts) MarshalJSON() ([]byte, error) {
	return json.Marshal([6]int64{c.FullLoadRows, c.Inserts, c.Updates, c.Deletes, c.DDLs, c.ApplyErrors})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Counts) UnmarshalJSON(b []byte) error {
	var a []int64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 6 {
		return fmt.Errorf("stored table counts %s: want 6 numbers", b)
	}
	*c = Counts{a[0], a[1], a[2], a[3], a[4], a[5]}
	return nil
}

// CountsJSON encodes counts by table for a target's control table; nil
// counts encode as nil (SQL NULL).
func CountsJSON(counts map[string]Counts) []byte {
	if counts == nil {
		return nil
	}
	b, err := json.Marshal(counts)
	if err != nil {
		panic(err) // maps of strings to arrays of numbers always encode
	}
	return b
}

// ParseCounts decodes what CountsJSON encoded; nil or empty is no counts.
func ParseCounts(b []byte) (map[string]Counts, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out map[string]Counts
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("stored table counts: %w", err)
	}
	return out, nil
}

// counts returns a table's counters as they stand; FullLoadRows only once
// its load is complete, as rows of a copy still going are not yet durable.
func (t *TableStats) counts() Counts {
	c := Counts{
		Inserts: t.Inserts.Load(), Updates: t.Updates.Load(), Deletes: t.Deletes.Load(),
		DDLs: t.DDLs.Load(), ApplyErrors: t.ApplyErrors.Load(),
	}
	if t.State() == StateCompleted {
		c.FullLoadRows = t.FullLoadRows.Load()
	}
	return c
}

// restore sets the counters to counts committed on the target.
func (t *TableStats) restore(c Counts) {
	t.FullLoadRows.Store(c.FullLoadRows)
	t.Inserts.Store(c.Inserts)
	t.Updates.Store(c.Updates)
	t.Deletes.Store(c.Deletes)
	t.DDLs.Store(c.DDLs)
	t.ApplyErrors.Store(c.ApplyErrors)
}

// Counts returns the counters of every table the statistics know.
func (s *Stats) Counts() map[string]Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Counts, len(s.tables))
	for k, t := range s.tables {
		out[k] = t.counts()
	}
	return out
}

// lookup returns the statistics of a table by source name, if known.
func (s *Stats) lookup(qualified string) (*TableStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[qualified]
	return t, ok
}

// Restore sets the counters of every table the statistics know to the
// counts stored on the target with the position the replication resumes
// from (a table with none stored: zero), and says from then on that the
// statistics count from the replication's start, not from this run's
// (Snapshot.Cumulative).
func (s *Stats) Restore(counts map[string]Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tables {
		t.restore(counts[k])
	}
	s.cumulative.Store(true)
}
