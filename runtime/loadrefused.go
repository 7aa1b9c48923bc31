package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// errTableSuspended ends the load of a chunk whose table a refused row
// suspended.
var errTableSuspended = errors.New("table suspended")

// loadRefused handles a chunk the target refused (err, which Classify
// calls a row or table error) by the ErrorBehavior policies. A table error
// suspends the table or stops the load. A row error loads the chunk again
// in halves, and halves of those, until the refused rows are alone: each
// is left out and recorded in awsdms_apply_exceptions, or suspends its
// table, or stops the load, and every other row is loaded. k refused rows
// among n cost about 2·k·log2(n) loads, paid only by a chunk that has one.
func (r *Replicator) loadRefused(ctx context.Context, c Chunk, err error) (int64, error) {
	t := c.Table
	if Classify(err) == KindTable {
		// The table's other chunks fail the same way, at the same time:
		// the first suspends the table and records why, once.
		r.loadTableErr.Lock()
		defer r.loadTableErr.Unlock()
		if r.suspended.has(t) {
			return 0, nil
		}
		re := &RowError{Change: &Change{Op: OpInsert, Table: t}, Kind: KindTable, Statement: "full load of " + t.QualifiedSource(), Err: err}
		if err := r.refuseLoad(ctx, re, nil); !errors.Is(err, errTableSuspended) {
			return 0, err
		}
		return 0, nil
	}
	r.Log.Warn("the target refused rows of a chunk: loading it again in parts to find them", "task", r.Task, "table", t.QualifiedSource(), "chunk", c.Index+1, "error", err)
	var buf bytes.Buffer
	if err := r.Source.Copy(ctx, c, CopyText, &buf); err != nil {
		return 0, fmt.Errorf("read the chunk again: %w", err)
	}
	data := buf.Bytes()
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data) - 1
		}
		lines = append(lines, data[:i+1])
		data = data[i+1:]
	}
	var xs []Exception
	n, err := r.loadLines(ctx, t, lines, &xs)
	if rerr := r.Target.RecordExceptions(ctx, r.Task, nil, xs); rerr != nil {
		return n, errors.Join(err, fmt.Errorf("record the refused rows in awsdms_apply_exceptions: %w", rerr))
	}
	if errors.Is(err, errTableSuspended) {
		return n, nil
	}
	return n, err
}

// loadLines loads COPY text lines into t, splitting them where the target
// refuses a row.
func (r *Replicator) loadLines(ctx context.Context, t *Table, lines [][]byte, xs *[]Exception) (int64, error) {
	if len(lines) == 0 {
		return 0, nil
	}
	n, err := r.Target.Load(ctx, t, CopyText, bytes.NewReader(bytes.Join(lines, nil)))
	if err == nil {
		return n, nil
	}
	k := Classify(err)
	if k != KindData && k != KindTruncation {
		return 0, err
	}
	if len(lines) == 1 {
		stmt := fmt.Sprintf("COPY %s FROM STDIN (FORMAT text): %s", t.QualifiedSource(), bytes.TrimSuffix(lines[0], []byte("\n")))
		re := &RowError{Change: &Change{Op: OpInsert, Table: t}, Kind: k, Statement: stmt, Err: err}
		return 0, r.refuseLoad(ctx, re, xs)
	}
	half := len(lines) / 2
	a, err := r.loadLines(ctx, t, lines[:half], xs)
	if err != nil {
		return a, err
	}
	b, err := r.loadLines(ctx, t, lines[half:], xs)
	return a + b, err
}

// refuseLoad applies the policy for a row or table the full load could not
// write. xs collects the exceptions to record; nil records at once.
func (r *Replicator) refuseLoad(ctx context.Context, re *RowError, xs *[]Exception) error {
	t := re.Change.Table
	member, policy := r.policy(re, []*Table{t})
	why := fmt.Sprintf("ErrorBehavior.%s %s: %v", member, policy, re)
	ts := r.Stats.Table(t.SourceSchema, t.SourceName)
	switch policy {
	case PolicyStopTask:
		return fmt.Errorf("%s; the row was: %s", why, clip(re.Statement, 2000))
	case PolicyIgnoreRecord:
		ts.ApplyErrors.Add(1)
		return nil
	}
	x := Exception{Table: t, Time: time.Now(), Statement: re.Statement, Error: re.Error()}
	if xs != nil {
		*xs = append(*xs, x)
	} else if err := r.Target.RecordExceptions(ctx, r.Task, nil, []Exception{x}); err != nil {
		return err
	}
	if policy == PolicySuspendTable {
		r.suspended.add(t, re.Kind, why)
		ts.SetError(why)
		r.Log.Error("table suspended during the full load: reload it once the cause is fixed", "task", r.Task, "table", t.QualifiedSource(), "reason", why)
		return errTableSuspended
	}
	if re.Kind != KindTable {
		ts.ApplyErrors.Add(1)
	}
	ts.Warn(fmt.Sprintf("rows not loaded (%s): recorded in awsdms_apply_exceptions", re.Kind))
	return nil
}

// unsuspended returns the tables not suspended.
func (r *Replicator) unsuspended(tables []*Table) []*Table {
	var out []*Table
	for _, t := range tables {
		if !r.suspended.has(t) {
			out = append(out, t)
		}
	}
	return out
}
