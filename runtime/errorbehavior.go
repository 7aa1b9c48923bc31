package runtime

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrorBehavior is DMS's section of that name: what the replication does
// with a row the target refuses or finds not as the source had it, with a
// table it cannot write, and with passing faults. Every member is DMS's,
// with DMS's values; an empty policy means DMS's default. Sluice's LOG_ERROR
// never loses a row silently: the row is written to awsdms_apply_exceptions
// on the target, in the transaction that moves the position past it, and
// the table's statistics count it and say so.
type ErrorBehavior struct {
	// DataErrorPolicy is for a row the target refuses (a constraint, a
	// value out of range, a trigger's error); DataTruncationErrorPolicy
	// for one whose value does not fit its column. LOG_ERROR (default),
	// IGNORE_RECORD, SUSPEND_TABLE or STOP_TASK.
	DataErrorPolicy           string
	DataTruncationErrorPolicy string
	// DataErrorEscalationCount is how many such rows one table may have
	// before DataErrorEscalationPolicy (SUSPEND_TABLE, the default, or
	// STOP_TASK) is applied to it; 0 never escalates.
	DataErrorEscalationPolicy string
	DataErrorEscalationCount  int
	// TableErrorPolicy is for a table the target cannot write at all (it
	// was dropped, a column is missing, no privilege): SUSPEND_TABLE
	// (default) or STOP_TASK. TableErrorEscalationCount is how many tables
	// may be suspended so before TableErrorEscalationPolicy (STOP_TASK)
	// stops the replication; 0 never escalates.
	TableErrorPolicy           string
	TableErrorEscalationPolicy string
	TableErrorEscalationCount  int
	// The apply conflicts: a delete or update that finds no row on the
	// target, an insert that finds its key taken. ApplyErrorDeletePolicy
	// defaults to IGNORE_RECORD (the row is gone either way), the others
	// to LOG_ERROR; INSERT_RECORD overwrites the row there, UPDATE_RECORD
	// inserts the missing one.
	ApplyErrorDeletePolicy string
	ApplyErrorInsertPolicy string
	ApplyErrorUpdatePolicy string
	// ApplyErrorEscalationCount is how many conflicts one table may have
	// before ApplyErrorEscalationPolicy (LOG_ERROR, the default,
	// SUSPEND_TABLE or STOP_TASK) is applied to it; 0 never escalates.
	ApplyErrorEscalationPolicy string
	ApplyErrorEscalationCount  int
	// FailOnNoTablesCaptured fails a replication whose table mappings
	// select no table (default true).
	FailOnNoTablesCaptured *bool
	// Passing faults (a lost connection, a restarting server, a deadlock)
	// restart the change stream from the target's position.
	// RecoverableErrorCount is how many restarts in a row are tried (-1,
	// the default: no limit; 0: none); RecoverableErrorInterval the wait
	// before the first, in seconds, which RecoverableErrorThrottling
	// (default true) doubles each time up to RecoverableErrorThrottlingMax
	// seconds. Unset, the first wait is Sluice's half second and the
	// longest 30 seconds, not DMS's 5 and 1,800: a lost connection here
	// costs a reconnect, not a task restart.
	RecoverableErrorCount         *int
	RecoverableErrorInterval      *int
	RecoverableErrorThrottling    *bool
	RecoverableErrorThrottlingMax *int
	// FullLoadIgnoreConflicts is DMS's choice for the changes it caches
	// during a full load and applies after it. Sluice caches none: the
	// load reads a snapshot at the exact position the change stream starts
	// from, so no such conflicts arise and both values mean the same.
	FullLoadIgnoreConflicts *bool
}

// The policies' values, as DMS spells them.
const (
	PolicyLogError     = "LOG_ERROR"
	PolicyIgnoreRecord = "IGNORE_RECORD"
	PolicySuspendTable = "SUSPEND_TABLE"
	PolicyStopTask     = "STOP_TASK"
	PolicyInsertRecord = "INSERT_RECORD"
	PolicyUpdateRecord = "UPDATE_RECORD"
)

// policyMember is one policy member: its name, where it is, its default
// and the values it takes.
type policyMember struct {
	name   string
	v      *string
	def    string
	values []string
}

func (e *ErrorBehavior) policies() []policyMember {
	row := []string{PolicyLogError, PolicyIgnoreRecord, PolicySuspendTable, PolicyStopTask}
	return []policyMember{
		{"DataErrorPolicy", &e.DataErrorPolicy, PolicyLogError, row},
		{"DataTruncationErrorPolicy", &e.DataTruncationErrorPolicy, PolicyLogError, row},
		{"DataErrorEscalationPolicy", &e.DataErrorEscalationPolicy, PolicySuspendTable, []string{PolicySuspendTable, PolicyStopTask}},
		{"TableErrorPolicy", &e.TableErrorPolicy, PolicySuspendTable, []string{PolicySuspendTable, PolicyStopTask}},
		{"TableErrorEscalationPolicy", &e.TableErrorEscalationPolicy, PolicyStopTask, []string{PolicyStopTask}},
		{"ApplyErrorDeletePolicy", &e.ApplyErrorDeletePolicy, PolicyIgnoreRecord, row},
		{"ApplyErrorInsertPolicy", &e.ApplyErrorInsertPolicy, PolicyLogError, append(row[:4:4], PolicyInsertRecord)},
		{"ApplyErrorUpdatePolicy", &e.ApplyErrorUpdatePolicy, PolicyLogError, append(row[:4:4], PolicyUpdateRecord)},
		{"ApplyErrorEscalationPolicy", &e.ApplyErrorEscalationPolicy, PolicyLogError, []string{PolicyLogError, PolicySuspendTable, PolicyStopTask}},
	}
}

// validate checks the section. Policies left empty keep DMS's default,
// resolved by policy, so that what a document did not say stays visible
// (batch apply refuses only the policies a document asks for).
func (e *ErrorBehavior) validate() error {
	for _, p := range e.policies() {
		if *p.v != "" && !slices.Contains(p.values, *p.v) {
			return fmt.Errorf("ErrorBehavior.%s %q is not valid: use %s", p.name, *p.v, strings.Join(p.values, ", "))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"DataErrorEscalationCount", e.DataErrorEscalationCount},
		{"TableErrorEscalationCount", e.TableErrorEscalationCount},
		{"ApplyErrorEscalationCount", e.ApplyErrorEscalationCount},
	} {
		if n.v < 0 {
			return fmt.Errorf("ErrorBehavior.%s %d is out of range: use 0 (never escalate) or more", n.name, n.v)
		}
	}
	if c := e.RecoverableErrorCount; c != nil && *c < -1 {
		return fmt.Errorf("ErrorBehavior.RecoverableErrorCount %d is out of range: use -1 (no limit), 0 (no restart) or more", *c)
	}
	if i := e.RecoverableErrorInterval; i != nil && (*i < 1 || *i > 86400) {
		return fmt.Errorf("ErrorBehavior.RecoverableErrorInterval %d is out of range: use 1 to 86400 seconds", *i)
	}
	if m := e.RecoverableErrorThrottlingMax; m != nil && (*m < 1 || *m > 86400) {
		return fmt.Errorf("ErrorBehavior.RecoverableErrorThrottlingMax %d is out of range: use 1 to 86400 seconds", *m)
	}
	return nil
}

// policy returns the value of the member named name, or its default.
func (e ErrorBehavior) policy(name string) string {
	for _, p := range e.policies() {
		if p.name == name {
			if *p.v == "" {
				return p.def
			}
			return *p.v
		}
	}
	panic("no ErrorBehavior policy " + name)
}

// conflictPolicy is the policy of a conflict of op.
func (e ErrorBehavior) conflictPolicy(op Op) string {
	switch op {
	case OpInsert:
		return e.policy("ApplyErrorInsertPolicy")
	case OpUpdate:
		return e.policy("ApplyErrorUpdatePolicy")
	default:
		return e.policy("ApplyErrorDeletePolicy")
	}
}

// conflicts says how the applier writes the inserts, updates and deletes
// that conflict: an IGNORE_RECORD that counts towards no escalation is
// skipped where it is met; the rest are reported to refused.
func (e ErrorBehavior) conflicts() (inserts, updates, deletes Conflict) {
	mode := func(op Op) Conflict {
		switch p := e.conflictPolicy(op); {
		case p == PolicyInsertRecord:
			return ConflictOverwrite
		case p == PolicyIgnoreRecord && e.ApplyErrorEscalationCount == 0:
			return ConflictSkip
		}
		return ConflictReport
	}
	return mode(OpInsert), mode(OpUpdate), mode(OpDelete)
}

// failOnNoTables is FailOnNoTablesCaptured, true unless set false.
func (e ErrorBehavior) failOnNoTables() bool {
	return e.FailOnNoTablesCaptured == nil || *e.FailOnNoTablesCaptured
}

// Restarts after passing faults when ErrorBehavior does not say.
const (
	firstRetry   = 500 * time.Millisecond
	maxRetryWait = 30 * time.Second
)

// retries returns how many restarts in a row are tried (-1: no limit),
// the first wait, whether it doubles, and the longest.
func (e ErrorBehavior) retries() (count int, first time.Duration, throttle bool, longest time.Duration) {
	count, first, throttle, longest = -1, firstRetry, true, maxRetryWait
	if e.RecoverableErrorCount != nil {
		count = *e.RecoverableErrorCount
	}
	if e.RecoverableErrorInterval != nil {
		first = time.Duration(*e.RecoverableErrorInterval) * time.Second
		longest = max(longest, first)
	}
	if e.RecoverableErrorThrottling != nil {
		throttle = *e.RecoverableErrorThrottling
	}
	if e.RecoverableErrorThrottlingMax != nil {
		longest = max(time.Duration(*e.RecoverableErrorThrottlingMax)*time.Second, first)
	}
	return count, first, throttle, longest
}

// restarts paces the restarts after passing faults as ErrorBehavior's
// RecoverableError members say.
type restarts struct {
	limit, tries         int
	first, wait, longest time.Duration
	throttle             bool
}

func (r *Replicator) restarts() *restarts {
	limit, first, throttle, longest := r.Settings.ErrorBehavior.retries()
	return &restarts{limit: limit, first: first, wait: first, longest: longest, throttle: throttle}
}

// next returns how long to wait before the restart after cause, which
// ended an attempt that ran for ran (one that ran a while starts the count
// over), or an error when RecoverableErrorCount restarts in a row were
// tried.
func (rs *restarts) next(ran time.Duration, cause error) (time.Duration, error) {
	if ran > rs.longest {
		rs.wait, rs.tries = rs.first, 0
	}
	if rs.tries++; rs.limit >= 0 && rs.tries > rs.limit {
		return 0, fmt.Errorf("giving up after %d restarts (ErrorBehavior.RecoverableErrorCount): %w", rs.limit, cause)
	}
	wait := rs.wait
	if rs.throttle {
		rs.wait = min(2*rs.wait, rs.longest)
	}
	return wait, nil
}

// checkBatch refuses the conflict policies a document sets that batch
// apply cannot honour: it writes each batch's net changes per key, so an
// insert over a row there overwrites it, an update of a missing row
// inserts it, and a delete of a missing row does nothing, whatever the
// policy. Row errors and table errors are handled as in transactional
// apply: the batch is applied again row by row.
func (e ErrorBehavior) checkBatch() error {
	var refused []string
	for _, p := range []struct{ name, v, batch string }{
		{"ApplyErrorInsertPolicy", e.ApplyErrorInsertPolicy, PolicyInsertRecord},
		{"ApplyErrorUpdatePolicy", e.ApplyErrorUpdatePolicy, PolicyUpdateRecord},
		{"ApplyErrorDeletePolicy", e.ApplyErrorDeletePolicy, PolicyIgnoreRecord},
	} {
		if p.v != "" && p.v != p.batch {
			refused = append(refused, fmt.Sprintf("ErrorBehavior.%s %s", p.name, p.v))
		}
	}
	if e.ApplyErrorEscalationCount > 0 {
		refused = append(refused, "ErrorBehavior.ApplyErrorEscalationCount")
	}
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("%s cannot be honoured with TargetMetadata.BatchApplyEnabled, which writes each batch's net changes per key (an insert overwrites, an update of a missing row inserts it, a delete of a missing row does nothing): turn batch apply off, or leave these members out", strings.Join(refused, ", "))
}
