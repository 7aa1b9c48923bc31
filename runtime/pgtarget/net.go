package pgtarget

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/copytext"
)

// netChanges holds, per table and key, the net effect of the changes of one
// target transaction in batch apply mode (BatchApplyEnabled): a row that was
// inserted and updated five times becomes one row; a row inserted and deleted
// becomes one delete of a key the target may not have. Only keyed tables are
// held; other changes go straight to the pipeline.
type netChanges struct {
	tables map[*runtime.Table]*tableNet
	order  []*runtime.Table
	// bytes approximates the memory held; limit is where it is written out.
	bytes, limit int64
}

type tableNet struct {
	entries map[string]*netEntry
	keys    []string // first-seen order, for a deterministic load
}

type netEntry struct {
	deleted bool
	row     runtime.Row
}

func newNetChanges(limit int64) *netChanges {
	return &netChanges{tables: map[*runtime.Table]*tableNet{}, limit: limit}
}

func (n *netChanges) reset() { n.tables, n.order, n.bytes = map[*runtime.Table]*tableNet{}, nil, 0 }

func (n *netChanges) table(t *runtime.Table) *tableNet {
	tn := n.tables[t]
	if tn == nil {
		tn = &tableNet{entries: map[string]*netEntry{}}
		n.tables[t] = tn
		n.order = append(n.order, t)
	}
	return tn
}

func (tn *tableNet) set(k string, e *netEntry) {
	if _, ok := tn.entries[k]; !ok {
		tn.keys = append(tn.keys, k)
	}
	tn.entries[k] = e
}

// hold merges c into the held changes and reports whether it did. Changes it
// cannot merge (truncates, keyless tables, updates of unchanged TOAST values
// whose full row is not held) are left to the caller.
func (n *netChanges) hold(c *runtime.Change) bool {
	t := c.Table
	if c.Op == runtime.OpTruncate || !keyed(t) {
		return false
	}
	switch c.Op {
	case runtime.OpInsert:
		n.table(t).set(rowKey(t, c.New), &netEntry{row: c.New})
	case runtime.OpDelete:
		n.table(t).set(rowKey(t, c.Old), &netEntry{deleted: true, row: c.Old})
	case runtime.OpUpdate:
		row := c.New
		oldKey := rowKey(t, c.New)
		if c.Old != nil {
			oldKey = rowKey(t, c.Old)
		}
		if hasUnchanged(t, row) {
			tn := n.tables[t]
			if tn == nil {
				return false
			}
			prev := tn.entries[oldKey]
			if prev == nil || prev.deleted {
				return false
			}
			row = append(runtime.Row(nil), row...)
			for i := range row {
				if row[i].Kind == runtime.Unchanged {
					row[i] = prev.row[i]
				}
			}
		}
		tn := n.table(t)
		newKey := rowKey(t, row)
		if newKey != oldKey {
			tn.set(oldKey, &netEntry{deleted: true, row: c.Old})
		}
		tn.set(newKey, &netEntry{row: row})
	default:
		return false
	}
	n.bytes += int64(c.Size)
	return true
}

func hasUnchanged(t *runtime.Table, row runtime.Row) bool {
	for _, i := range t.Copied() {
		if row[i].Kind == runtime.Unchanged {
			return true
		}
	}
	return false
}

// rowKey encodes a row's key values, length-prefixed so no two keys collide.
func rowKey(t *runtime.Table, row runtime.Row) string {
	var b strings.Builder
	for _, k := range t.Key {
		v := row[k]
		b.WriteString(strconv.Itoa(int(v.Kind)))
		b.WriteString(strconv.Itoa(len(v.Data)))
		b.WriteByte(':')
		b.Write(v.Data)
	}
	return b.String()
}

// flushNet writes the held changes of the given tables (all tables when both
// are nil): their rows go by COPY into a temporary table, then one DELETE
// removes the deleted keys from the target and one INSERT ... ON CONFLICT
// writes the surviving rows (see writeNet).
func (a *applier) flushNet(ctx context.Context, t *runtime.Table, tables []*runtime.Table) error {
	which := tables
	if t != nil {
		which = append(which, t)
	}
	if t == nil && tables == nil {
		which = a.net.order
	}
	for _, tb := range which {
		tn := a.net.tables[tb]
		if tn == nil || len(tn.keys) == 0 {
			continue
		}
		if err := a.writeNet(ctx, tb, tn); err != nil {
			return err
		}
		delete(a.net.tables, tb)
	}
	if t == nil && tables == nil {
		a.net.order, a.net.bytes = nil, 0
	}
	return nil
}

// netRowsByStatement is the most held rows of a table written as one
// prepared statement each rather than through a temporary table: staging
// costs the target two round trips and four statements whatever the rows,
// which a small batch (a replicator that keeps up commits every few
// milliseconds) does not earn back.
const netRowsByStatement = 64

func (a *applier) writeNet(ctx context.Context, t *runtime.Table, tn *tableNet) error {
	if len(tn.keys) <= netRowsByStatement {
		return a.writeNetRows(ctx, t, tn)
	}
	tmp := ident("sluice_net_" + strconv.Itoa(a.tempIndex(t)))
	cols := t.Copied()
	names := make([]string, len(cols))
	for j, i := range cols {
		names[j] = ident(t.Columns[i].Name)
	}
	colList := strings.Join(names, ", ")
	if !a.tempReady[t] {
		// The staging table holds text, read as each column's type when
		// the rows move: typed columns would refuse the NULLs that stand
		// for a deleted row's other columns (NOT NULL domains). Created
		// inside the transaction, a rollback removes it again, which
		// Rollback accounts for.
		defs := make([]string, len(names))
		for j, n := range names {
			defs[j] = n + " text"
		}
		a.batch.ExecParams(fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s (%s, sluice_deleted bool) ON COMMIT DELETE ROWS", tmp, strings.Join(defs, ", ")), nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		a.tempReady[t] = true
	}
	casts := make([]string, len(cols))
	for j, i := range cols {
		casts[j] = names[j] + "::" + t.Columns[i].Type
	}
	if a.tempUsed[t] {
		// Written before in this transaction: the rows go at commit (ON
		// COMMIT DELETE ROWS), before then they must be cleared here.
		a.batch.ExecParams("TRUNCATE "+tmp, nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
	}
	a.tempUsed[t] = true
	if err := a.send(ctx); err != nil {
		return err
	}
	var buf []byte
	for _, k := range tn.keys {
		e := tn.entries[k]
		for j, i := range cols {
			if j > 0 {
				buf = append(buf, '\t')
			}
			if e.deleted && !isKey(t, i) {
				buf = append(buf, copytext.Null...)
			} else {
				buf = copytext.Copy.AppendField(buf, e.row[i])
			}
		}
		if e.deleted {
			buf = append(buf, "\tt\n"...)
		} else {
			buf = append(buf, "\tf\n"...)
		}
	}
	if _, err := a.pg.CopyFrom(ctx, bytes.NewReader(buf), fmt.Sprintf("COPY %s (%s, sluice_deleted) FROM STDIN", tmp, colList)); err != nil {
		return fmt.Errorf("stage net changes of %s: %w", tableName(t), err)
	}
	var on []string
	for _, k := range t.Key {
		n := ident(t.Columns[k].Name)
		on = append(on, "t."+n+" = s."+n+"::"+t.Columns[k].Type)
	}
	insert := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s WHERE NOT sluice_deleted", tableName(t), colList, strings.Join(casts, ", "), tmp)
	if otherUnique(t) {
		// Rows are written in no particular order: with another unique
		// constraint, a row could take a value another row gives up
		// later in the batch. Removing every touched key first frees
		// the values before any is taken.
		a.batch.ExecParams(fmt.Sprintf("DELETE FROM %s t USING %s s WHERE %s", tableName(t), tmp, strings.Join(on, " AND ")), nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		a.batch.ExecParams(insert, nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		return nil
	}
	// Otherwise the surviving rows are updated in place where they exist:
	// a delete and insert of every updated row would write new index
	// entries for it and leave it dead, where an update can stay on its
	// page (HOT).
	a.batch.ExecParams(fmt.Sprintf("DELETE FROM %s t USING %s s WHERE s.sluice_deleted AND %s", tableName(t), tmp, strings.Join(on, " AND ")), nil, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	a.batch.ExecParams(insert+" ON CONFLICT ("+keyList(t)+") DO "+conflictUpdate(t), nil, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	return nil
}

// writeNetRows writes held rows as prepared statements: the deleted keys
// first (every touched key, when another unique constraint could make two
// rows collide in between, as in writeNet), then an upsert per surviving
// row.
func (a *applier) writeNetRows(ctx context.Context, t *runtime.Table, tn *tableNet) error {
	all := otherUnique(t)
	for _, k := range tn.keys {
		if e := tn.entries[k]; e.deleted || all {
			// A held delete may be of a row the target never had (inserted
			// and deleted in the batch): not a miss.
			if err := a.queueQuiet(ctx, &runtime.Change{Op: runtime.OpDelete, Table: t, Old: e.row}); err != nil {
				return err
			}
		}
	}
	for _, k := range tn.keys {
		if e := tn.entries[k]; !e.deleted {
			if err := a.queueQuiet(ctx, &runtime.Change{Op: runtime.OpInsert, Table: t, New: e.row}); err != nil {
				return err
			}
		}
	}
	return nil
}

// otherUnique reports whether the target table has a unique or exclusion
// constraint, or a unique index, besides the key rows are matched by.
func otherUnique(t *runtime.Table) bool {
	for _, c := range t.Constraints {
		if d := strings.ToUpper(c.Def); strings.HasPrefix(d, "UNIQUE") || strings.HasPrefix(d, "EXCLUDE") {
			return true
		}
	}
	for _, ix := range t.Indexes {
		if strings.HasPrefix(strings.ToUpper(ix.Def), "CREATE UNIQUE") {
			return true
		}
	}
	return false
}

// tempIndex numbers the applier's temporary tables, one per target table.
func (a *applier) tempIndex(t *runtime.Table) int {
	i, ok := a.tempNames[t]
	if !ok {
		i = len(a.tempNames)
		a.tempNames[t] = i
	}
	return i
}
