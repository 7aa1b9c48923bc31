package validate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluicedb/sluice/runtime"
)

// settle decides what becomes of the rows that differed: a row no
// transaction between its two snapshots wrote, once the stream has applied
// up to the later one, is a failure (after RecordFailureDelay*); a row one
// wrote is compared again; a row that keeps changing past
// RecordSuspendDelayInMinutes is suspended. Without a stream (once), every
// row is compared once more after the delays and reported if it still
// differs.
func (v *Validator) settle(ctx context.Context, runs []*tableRun, once bool) error {
	reached := v.Stats.Reached()
	failDelay := v.Settings.FailureDelay()
	suspend := time.Duration(v.Settings.RecordSuspendDelayInMinutes) * time.Minute
	again := map[*tableRun][]*candidate{}
	for _, tr := range runs {
		v.mu.Lock()
		pend := tr.pending
		tr.pending = nil
		v.mu.Unlock()
		var keep, fails []*candidate
		for _, c := range pend {
			now := time.Now()
			switch {
			case !v.Streaming:
				again[tr] = append(again[tr], c)
			case c.lo == nil:
				// Snapshots without positions say nothing of the rows
				// the stream was writing: the row is compared again
				// until it agrees or is suspended.
				if now.Sub(c.first) > suspend {
					tr.suspended++
				} else {
					again[tr] = append(again[tr], c)
				}
			case reached == nil || reached.Kind() != c.hi.Kind() || reached.Compare(c.hi) < 0:
				// The stream has not yet applied what the later snapshot
				// holds: the row cannot be judged yet.
				if now.Sub(c.first) > suspend {
					tr.suspended++
				} else {
					keep = append(keep, c)
				}
			case v.touched(tr, c):
				if now.Sub(c.first) > suspend {
					tr.suspended++
				} else {
					again[tr] = append(again[tr], c)
				}
			case now.Sub(c.first) < failDelay:
				again[tr] = append(again[tr], c)
			default:
				fails = append(fails, c)
			}
		}
		v.mu.Lock()
		tr.pending = append(tr.pending, keep...)
		v.mu.Unlock()
		if err := v.fail(ctx, tr, fails); err != nil {
			return err
		}
	}
	if len(again) == 0 {
		return nil
	}
	if once {
		d := max(v.Settings.CDCDelay(), failDelay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	found, err := v.compareAgain(ctx, again)
	if err != nil {
		// Not compared: they wait for the next round.
		for tr, cs := range again {
			v.mu.Lock()
			tr.pending = append(tr.pending, cs...)
			v.mu.Unlock()
		}
		return err
	}
	for tr, cs := range found {
		if once {
			if err := v.fail(ctx, tr, cs); err != nil {
				return err
			}
			continue
		}
		v.mu.Lock()
		tr.pending = mergeCandidates(tr.pending, cs)
		v.mu.Unlock()
	}
	return nil
}

// touched says whether a transaction between c's snapshots wrote its row
// (for a table whose keys the record cannot name, any of its rows).
func (v *Validator) touched(tr *tableRun, c *candidate) bool {
	if v.Touched == nil {
		return false
	}
	if tr.p.keyless() || !tr.p.tracked {
		keys, whole := v.Touched.Changed(tr.p.name, c.lo)
		return whole || len(keys) > 0
	}
	return v.Touched.Since(tr.p.name, c.m.keyString(), c.lo)
}

// compareAgain compares the rows of again at new snapshots and returns
// those that still differ, keeping when each was first found.
func (v *Validator) compareAgain(ctx context.Context, again map[*tableRun][]*candidate) (map[*tableRun][]*candidate, error) {
	out := map[*tableRun][]*candidate{}
	var keyed []*tableRun
	for tr, cs := range again {
		if tr.p.keyless() {
			// A keyless table's rows have no key to fetch them by: it
			// is compared whole again.
			found, err := v.pass(ctx, tr)
			if err != nil {
				return nil, err
			}
			keepFirst(found, cs)
			out[tr] = found
			continue
		}
		keyed = append(keyed, tr)
	}
	if len(keyed) == 0 {
		return out, nil
	}
	src, tgt, err := v.sessions(ctx, 1, false)
	if err != nil {
		return nil, err
	}
	defer runtime.CloseSessions(ctx, src)
	defer runtime.CloseSessions(ctx, tgt)
	lo, hi := v.window(src[0], tgt[0])
	for _, tr := range keyed {
		cs := again[tr]
		keys := make([]bound, len(cs))
		first := map[string]time.Time{}
		for i, c := range cs {
			keys[i] = c.m.key
			first[c.m.keyString()] = c.first
		}
		pr := &pair{src: &reader{p: tr.p, src: true, s: src[0]}, tgt: &reader{p: tr.p, s: tgt[0]}}
		if err := pr.keys(ctx, keys); err != nil {
			return nil, err
		}
		for _, m := range pr.found {
			out[tr] = append(out[tr], &candidate{m: m, lo: lo, hi: hi, first: first[m.keyString()]})
		}
		v.mu.Lock()
		tr.fetched += pr.src.fetched + pr.tgt.fetched
		v.mu.Unlock()
	}
	return out, nil
}

// fail reports rows as failures: in the statistics, and in the target's
// awsdms_validation_failures_v1. Past TableFailureMaxCount the table's
// validation stops; past FailureMaxCount the replication's.
func (v *Validator) fail(ctx context.Context, tr *tableRun, cs []*candidate) error {
	if len(cs) == 0 {
		return nil
	}
	repaired, cs, err := v.repair(ctx, tr, cs)
	if err != nil {
		v.log().Warn("could not repair the rows that differ; they are reported", "table", tr.p.name, "error", err)
	}
	if len(cs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	fs := make([]runtime.ValidationFailure, len(cs))
	var failed int64
	for i, c := range cs {
		details := c.m.details
		if repaired[c] {
			details = withRepaired(details)
		} else {
			failed++
		}
		fs[i] = runtime.ValidationFailure{
			TableOwner: tr.t.SourceSchema, TableName: tr.t.SourceName, Time: now,
			KeyType: "Row", Key: keyJSON(c.m.key), FailureType: c.m.typ, Details: details,
		}
		v.log().Warn("validation failure", "table", tr.p.name, "key", keyJSON(c.m.key), "type", c.m.typ, "repaired", repaired[c])
	}
	v.mu.Lock()
	tr.failed += failed
	v.failed += failed
	tr.repaired += int64(len(repaired))
	if tr.failed >= int64(v.Settings.TableFailureMaxCount) && tr.halted == "" {
		tr.halted = fmt.Sprintf("validation of the table stopped after %d failed rows (TableFailureMaxCount %d)", tr.failed, v.Settings.TableFailureMaxCount)
	}
	if v.failed >= int64(v.Settings.FailureMaxCount) && v.halted == "" {
		v.halted = fmt.Sprintf("validation stopped after %d failed rows in all tables (FailureMaxCount %d)", v.failed, v.Settings.FailureMaxCount)
	}
	v.mu.Unlock()
	if v.Recorder == nil {
		return nil
	}
	if err := v.Recorder.RecordValidationFailures(ctx, v.Task, nil, fs); err != nil {
		return fmt.Errorf("record validation failures of %s: %w", tr.p.name, err)
	}
	return nil
}

// report puts tr's validation in the table's statistics.
func (v *Validator) report(tr *tableRun) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := runtime.ValidationStats{
		Pending: int64(len(tr.pending)), Failed: tr.failed, Suspended: tr.suspended,
		LastValidated: tr.last, ComparedRows: tr.compared, RowsFetched: tr.fetched,
	}
	var details []string
	switch {
	case tr.err != nil:
		s.State = runtime.ValidationError
		details = append(details, tr.err.Error())
	case tr.failed > 0:
		s.State = runtime.ValidationMismatched
	case tr.suspended > 0:
		s.State = runtime.ValidationSuspended
	case tr.running || len(tr.pending) > 0 || tr.whole:
		s.State = runtime.ValidationPending
	default:
		s.State = runtime.ValidationValidated
	}
	if tr.p != nil && tr.p.keyless() && tr.err == nil {
		details = append(details, "no key: compared as a multiset of rows")
	}
	if tr.p != nil && len(tr.p.skipped) > 0 {
		details = append(details, "not compared (SkipLobColumns): "+strings.Join(tr.p.skipped, ", "))
	}
	if tr.repaired > 0 {
		details = append(details, fmt.Sprintf("%d rows repaired from the source (RepairValidationFailures)", tr.repaired))
	}
	if tr.halted != "" {
		details = append(details, tr.halted)
	}
	if v.halted != "" {
		details = append(details, v.halted)
	}
	s.Details = strings.Join(details, "; ")
	v.Stats.Table(tr.t.SourceSchema, tr.t.SourceName).SetValidation(s)
}

// withRepaired marks a failure's details as repaired.
func withRepaired(details string) string {
	if details == "" {
		return `{"repaired":true}`
	}
	return strings.TrimSuffix(details, "}") + `,"repaired":true}`
}

// repair rewrites the rows of cs on the target from the source, when the
// settings ask for it and the stream's applier can: it returns the rows
// repaired, and cs less the rows that changed since they were compared
// (they go back to pending, to be compared again).
func (v *Validator) repair(ctx context.Context, tr *tableRun, cs []*candidate) (map[*candidate]bool, []*candidate, error) {
	if v.Repair == nil || v.Rows == nil || !v.Streaming || !tr.p.tracked || tr.p.keyless() {
		return nil, cs, nil
	}
	t := tr.t
	keyRow := func(k bound) runtime.Row {
		row := make(runtime.Row, len(t.Columns))
		for i, ci := range t.Key {
			row[ci] = runtime.Value{Kind: runtime.Text, Data: []byte(k[i])}
		}
		return row
	}
	var want []runtime.Row
	for _, c := range cs {
		if c.m.typ != runtime.MissingSource {
			want = append(want, keyRow(c.m.key))
		}
	}
	rows, err := v.Rows.FetchRows(ctx, t, want)
	if err != nil {
		return nil, cs, err
	}
	byKey := map[string]runtime.Row{}
	for _, row := range rows {
		parts := make([]string, len(t.Key))
		for i, ci := range t.Key {
			parts[i] = string(row[ci].Data)
		}
		byKey[strings.Join(parts, runtime.KeySep)] = row
	}
	rp := &runtime.Repair{}
	var fixed []*candidate
	for _, c := range cs {
		var ch *runtime.Change
		switch row := byKey[c.m.keyString()]; {
		case c.m.typ == runtime.MissingSource:
			ch = &runtime.Change{Op: runtime.OpDelete, Table: t, Old: keyRow(c.m.key)}
		case row == nil:
			// Gone from the source since: the stream deletes it.
			continue
		case c.m.typ == runtime.MissingTarget:
			ch = &runtime.Change{Op: runtime.OpInsert, Table: t, New: row}
		default:
			ch = &runtime.Change{Op: runtime.OpUpdate, Table: t, New: row}
		}
		for _, val := range append(ch.Old, ch.New...) {
			ch.Size += len(val.Data) + 16
		}
		rp.Changes = append(rp.Changes, ch)
		fixed = append(fixed, c)
	}
	if len(fixed) == 0 {
		return nil, cs, nil
	}
	rp.Still = func() bool {
		for _, c := range fixed {
			if c.lo != nil && v.touched(tr, c) {
				return false
			}
		}
		return true
	}
	err = v.Repair(ctx, rp)
	if runtime.IsRepairStale(err) {
		v.mu.Lock()
		tr.pending = mergeCandidates(tr.pending, fixed)
		v.mu.Unlock()
		stale := map[*candidate]bool{}
		for _, c := range fixed {
			stale[c] = true
		}
		var left []*candidate
		for _, c := range cs {
			if !stale[c] {
				left = append(left, c)
			}
		}
		return nil, left, nil
	}
	if err != nil {
		return nil, cs, err
	}
	done := map[*candidate]bool{}
	for _, c := range fixed {
		done[c] = true
	}
	return done, cs, nil
}
