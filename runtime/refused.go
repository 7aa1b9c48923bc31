package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// replayError ends a change stream whose target transaction the target
// aborted over one change: the stream starts again from the target's
// position, applying each change alone until it has passed the source
// transaction that began at until (applyLoop.careful).
type replayError struct {
	until Position
	cause error
}

func (e *replayError) Error() string {
	return fmt.Sprintf("applying again change by change up to %s: %v", e.until, e.cause)
}

func (e *replayError) Unwrap() error { return e.cause }

// again handles an error that left the target transaction unusable. One
// a change caused (Classify) is found by applying the transactions again
// change by change; any other is the stream's.
func (l *applyLoop) again(ctx context.Context, err error) error {
	if l.careful != nil || Classify(err) == KindNone || l.began == nil {
		return err
	}
	if rerr := l.target.Rollback(ctx); rerr != nil {
		return errors.Join(err, rerr)
	}
	l.inTxn, l.pending, l.shown = false, nil, nil
	l.r.refusedAt = time.Now()
	return &replayError{until: l.began, cause: err}
}

// refused handles a change the target did not apply, by the ErrorBehavior
// policy for it: the replication stops, the row is left out (recorded in
// awsdms_apply_exceptions but with IGNORE_RECORD), or its table is
// suspended; UPDATE_RECORD inserts the row an update did not find.
func (l *applyLoop) refused(ctx context.Context, re *RowError) error {
	r := l.r
	r.refusedAt = time.Now()
	c := re.Change
	tables := c.touched()
	member, policy := r.policy(re, tables)
	if policy == PolicyUpdateRecord {
		ins := insertOf(c)
		if ins == nil {
			member, policy = "ApplyErrorUpdatePolicy", PolicyLogError
			re.Err = errors.New("UPDATE_RECORD cannot insert the missing row: the source did not send every column of it")
		} else {
			err := l.target.Try(ctx, ins)
			var again *RowError
			if !errors.As(err, &again) {
				if err == nil {
					l.counts.add(ins)
				}
				return err
			}
			re = again
			member, policy = r.policy(re, tables)
		}
	}
	why := fmt.Sprintf("ErrorBehavior.%s %s: %v", member, policy, re)
	if policy == PolicyStopTask {
		return fmt.Errorf("%s; the statement was: %s", why, clip(re.Statement, 2000))
	}
	counter := 5
	if re.Kind == KindConflict {
		counter = 4
	}
	for _, t := range tables {
		l.counts.bump(t, counter)
	}
	if policy == PolicyIgnoreRecord {
		return nil
	}
	for _, t := range tables {
		msg := re.Error()
		if re.Kind == KindConflict {
			msg = "conflict: " + msg
		}
		if err := l.target.Except(ctx, Exception{Table: t, Time: time.Now(), Statement: re.Statement, Error: msg}); err != nil {
			return fmt.Errorf("record a refused change in awsdms_apply_exceptions: %w", err)
		}
		ts := r.Stats.Table(t.SourceSchema, t.SourceName)
		if policy == PolicySuspendTable {
			if err := l.target.Suspend(ctx, t, why); err != nil {
				return fmt.Errorf("record %s as suspended: %w", t.QualifiedSource(), err)
			}
			r.suspended.add(t, re.Kind, why)
			l.shown = append(l.shown, func() { ts.SetError(why) })
			r.Log.Error("table suspended: its changes are no longer applied until it is reloaded", "task", r.Task, "table", t.QualifiedSource(), "reason", why)
			continue
		}
		warning := fmt.Sprintf("changes not applied (%s): recorded in awsdms_apply_exceptions", re.Kind)
		l.shown = append(l.shown, func() { ts.Warn(warning) })
		r.Log.Warn("change not applied; recorded in awsdms_apply_exceptions", "task", r.Task, "table", t.QualifiedSource(), "reason", why)
	}
	return nil
}

// policy returns the ErrorBehavior member and policy that apply to re in
// tables, counting it towards its escalation.
func (r *Replicator) policy(re *RowError, tables []*Table) (member, policy string) {
	eb := r.Settings.ErrorBehavior
	var escalate string
	var limit int
	switch re.Kind {
	case KindConflict:
		member = map[Op]string{OpInsert: "ApplyErrorInsertPolicy", OpUpdate: "ApplyErrorUpdatePolicy"}[re.Change.Op]
		if member == "" {
			member = "ApplyErrorDeletePolicy"
		}
		escalate, limit = "ApplyErrorEscalationPolicy", eb.ApplyErrorEscalationCount
	case KindTruncation:
		member, escalate, limit = "DataTruncationErrorPolicy", "DataErrorEscalationPolicy", eb.DataErrorEscalationCount
	case KindTable:
		member = "TableErrorPolicy"
		policy = eb.policy(member)
		if n := eb.TableErrorEscalationCount; n > 0 && policy == PolicySuspendTable && r.suspended.tableErrors()+1 >= n {
			return "TableErrorEscalationPolicy", eb.policy("TableErrorEscalationPolicy")
		}
		return member, policy
	default:
		member, escalate, limit = "DataErrorPolicy", "DataErrorEscalationPolicy", eb.DataErrorEscalationCount
	}
	policy = eb.policy(member)
	if limit > 0 {
		for _, t := range tables {
			if r.suspended.count(t, re.Kind) >= limit {
				member, policy = escalate, eb.policy(escalate)
			}
		}
	}
	return member, policy
}

// insertOf returns the insert of an update's new row, nil when the source
// did not send every column of it.
func insertOf(c *Change) *Change {
	if c.Op != OpUpdate {
		return nil
	}
	for _, i := range c.Table.Copied() {
		if c.New[i].Kind == Unchanged {
			return nil
		}
	}
	return &Change{Op: OpInsert, Table: c.Table, New: c.New, Size: c.Size}
}

// writes says whether c reaches the target: a suspended table's changes
// do not (a truncate keeps its other tables).
func (r *Replicator) writes(c *Change) bool {
	if r.suspended.none() {
		return true
	}
	if c.Op != OpTruncate {
		for _, t := range c.touched() {
			if r.suspended.has(t) {
				return false
			}
		}
		return true
	}
	var left []*Table
	for _, t := range c.Tables {
		if !r.suspended.has(t) {
			left = append(left, t)
		}
	}
	c.Tables = left
	return len(left) > 0
}

// suspensions are the tables the replication no longer writes, and the
// refused changes counted towards each table's escalation. The full
// load's chunks and the applier update them, from several goroutines.
type suspensions struct {
	mu     sync.Mutex
	why    map[string]string
	tables int // suspended over a table error, towards TableErrorEscalationCount
	counts map[string]*[5]int
}

func (s *suspensions) none() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.why) == 0
}

func (s *suspensions) has(t *Table) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.why[t.QualifiedSource()]
	return ok
}

// set replaces the suspended tables by those stored on the target.
func (s *suspensions) set(stored map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.why = map[string]string{}
	for k, v := range stored {
		s.why[k] = v
	}
}

// all returns a copy of the suspended tables, to store.
func (s *suspensions) all() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.why))
	for k, v := range s.why {
		out[k] = v
	}
	return out
}

func (s *suspensions) add(t *Table, k ErrorKind, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.why == nil {
		s.why = map[string]string{}
	}
	if _, ok := s.why[t.QualifiedSource()]; !ok && k == KindTable {
		s.tables++
	}
	s.why[t.QualifiedSource()] = why
}

// lift ends the suspension of a reloaded table and starts its counts over.
func (s *suspensions) lift(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.why, name)
	delete(s.counts, name)
}

func (s *suspensions) tableErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables
}

// count adds one refused change of kind k to t's count and returns it;
// truncations count with data errors, as DMS counts them.
func (s *suspensions) count(t *Table, k ErrorKind) int {
	if k == KindTruncation {
		k = KindData
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]*[5]int{}
	}
	n := s.counts[t.QualifiedSource()]
	if n == nil {
		n = new([5]int)
		s.counts[t.QualifiedSource()] = n
	}
	n[k]++
	return n[k]
}

// clip shortens s to n bytes for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
