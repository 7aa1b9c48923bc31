package runtime

import (
	"strings"
	"sync"
)

// Touched records which rows the change stream wrote, and at which
// position, for validation: a row that differs between a source snapshot
// and a target snapshot taken at different positions is a mismatch only if
// no transaction between the two positions wrote it. The applier records;
// the validator asks. Keys are the text of the key columns as the change
// stream carries them, joined by KeySep.
type Touched struct {
	mu   sync.Mutex
	keys map[string]map[string]Position // table (schema.table) → key → last begin position
	// whole holds the last position at which a table changed in a way
	// that names no key: a truncate, a DDL, a keyless table's row, or
	// more keys than the tracker keeps.
	whole map[string]Position
	n     int
}

// atOrAfter says whether p is at or after lo; positions of another kind
// (a stream resumed from a GTID set, a snapshot at a file offset) cannot
// be told apart, so they count as after.
func atOrAfter(p, lo Position) bool {
	return lo == nil || p.Kind() != lo.Kind() || p.Compare(lo) >= 0
}

// KeySep separates the key columns' values in a key.
const KeySep = "\x00"

// maxTouched bounds the keys kept, in all tables; past it a table is
// recorded as changed whole.
const maxTouched = 2_000_000

// NewTouched returns an empty record.
func NewTouched() *Touched {
	return &Touched{keys: map[string]map[string]Position{}, whole: map[string]Position{}}
}

// record notes the rows c writes, in the transaction that begins at at.
func (t *Touched) record(c *Change, at Position) {
	if t == nil || at == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch c.Op {
	case OpInsert, OpUpdate, OpDelete:
		tb := c.Table
		if len(tb.Key) == 0 {
			t.whole[tb.QualifiedSource()] = at
			return
		}
		for _, row := range []Row{c.Old, c.New} {
			if row != nil {
				t.key(tb, row, at)
			}
		}
	case OpTruncate:
		for _, tb := range c.Tables {
			t.whole[tb.QualifiedSource()] = at
		}
	case OpDDL:
		for _, tb := range []*Table{c.DDL.Old, c.DDL.New} {
			if tb != nil {
				t.whole[tb.QualifiedSource()] = at
			}
		}
	}
}

func (t *Touched) key(tb *Table, row Row, at Position) {
	var b strings.Builder
	for i, ci := range tb.Key {
		if ci >= len(row) || row[ci].Kind == Unchanged {
			t.whole[tb.QualifiedSource()] = at
			return
		}
		if i > 0 {
			b.WriteString(KeySep)
		}
		b.Write(row[ci].Data)
	}
	name := tb.QualifiedSource()
	m := t.keys[name]
	if m == nil {
		m = map[string]Position{}
		t.keys[name] = m
	}
	if _, ok := m[b.String()]; !ok {
		if t.n >= maxTouched {
			t.whole[name] = at
			return
		}
		t.n++
	}
	m[b.String()] = at
}

// Since says whether a transaction beginning at or after lo wrote key of
// table (schema.table), or changed the table in a way that names no key.
func (t *Touched) Since(table, key string, lo Position) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.whole[table]; ok && atOrAfter(w, lo) {
		return true
	}
	p, ok := t.keys[table][key]
	return ok && atOrAfter(p, lo)
}

// Changed returns the keys of table written by transactions beginning at
// or after lo, and whether the table changed in a way that names no key
// since then (then the keys are not all there is).
func (t *Touched) Changed(table string, lo Position) (keys []string, whole bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.whole[table]; ok && atOrAfter(w, lo) {
		whole = true
	}
	for k, p := range t.keys[table] {
		if atOrAfter(p, lo) {
			keys = append(keys, k)
		}
	}
	return keys, whole
}

// Forget drops what was recorded before lo, which no validation asks
// about any more.
func (t *Touched) Forget(lo Position) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, m := range t.keys {
		for k, p := range m {
			if !atOrAfter(p, lo) {
				delete(m, k)
				t.n--
			}
		}
		if len(m) == 0 {
			delete(t.keys, name)
		}
	}
	for name, p := range t.whole {
		if !atOrAfter(p, lo) {
			delete(t.whole, name)
		}
	}
}
