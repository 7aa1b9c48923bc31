// Package lifecycle owns a replication's status: the events that move it
// and the one table of transitions that the API (StartReplication,
// StopReplication, ModifyReplicationConfig…) and the control loop (the start
// chain, replicator reports, sweeps) both consult. Statuses are spelled as
// AWS returns them (store.Status); this package decides which may follow
// which.
package lifecycle

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluicedb/sluice/infra/store"
)

// Event is what happens to a replication.
type Event string

// The events.
const (
	// Start is StartReplication.
	Start Event = "start"
	// Step is the start chain moving to its next step (testing the
	// connections, fetching metadata, sizing, provisioning, launching).
	Step Event = "step"
	// Restart is a new server starting over a start the previous one did
	// not finish.
	Restart Event = "restart"
	// Report is the replicator's first statistics: it runs.
	Report Event = "report"
	// Stop is StopReplication, or the server_time stop position passing.
	Stop Event = "stop"
	// End is a run ending without an error: stopped as asked, the full
	// load of a full-load replication done, a stop position reached, or a
	// stop before any replicator ran.
	End Event = "end"
	// Fail is a run or a start ending with an error.
	Fail Event = "fail"
	// Reload is ReloadReplicationTables.
	Reload Event = "reload"
	// Modify is ModifyReplicationConfig, and Delete
	// DeleteReplicationConfig (which also needs the capacity released).
	Modify Event = "modify"
	Delete Event = "delete"
)

// starting is the start chain, in order.
var starting = []store.Status{
	store.StatusInitializing,
	store.StatusPreparingMetadata,
	store.StatusTestingConnection,
	store.StatusFetchingMetadata,
	store.StatusCalculatingCap,
	store.StatusProvisioningCap,
	store.StatusReplicationStarting,
}

// settled are the statuses in which nothing runs and nothing is under way.
var settled = []store.Status{store.StatusCreated, store.StatusStopped, store.StatusFailed}

// active are the statuses in which a start is under way or a replicator
// runs.
var active = append(append([]store.Status(nil), starting...), store.StatusRunning)

// transition is one row of the table: event from a status leads to to. A
// zero to leaves the status as it is (the event is allowed, it moves
// nothing).
type transition struct {
	from []store.Status
	to   store.Status
}

// table is every transition there is. Step is not here: its target depends
// on where the chain is (next).
var table = map[Event]transition{
	Start:   {from: settled, to: store.StatusInitializing},
	Restart: {from: starting[:len(starting)-1], to: store.StatusInitializing},
	Report:  {from: []store.Status{store.StatusReplicationStarting}, to: store.StatusRunning},
	Stop:    {from: active, to: store.StatusStopping},
	End:     {from: append(append([]store.Status(nil), active...), store.StatusStopping), to: store.StatusStopped},
	Fail:    {from: append(append([]store.Status(nil), active...), store.StatusStopping), to: store.StatusFailed},
	Reload:  {from: []store.Status{store.StatusRunning}},
	Modify:  {from: settled},
	Delete:  {from: settled},
}

// ErrNotAllowed is what Next wraps when the event cannot happen in the
// status.
var ErrNotAllowed = errors.New("not allowed")

// Next returns the status event leads to from from, or an error wrapping
// ErrNotAllowed.
func Next(from store.Status, ev Event) (store.Status, error) {
	if ev == Step {
		for i, s := range starting[:len(starting)-1] {
			if s == from {
				return starting[i+1], nil
			}
		}
		return from, fmt.Errorf("%w: a replication that is %s has no start step to take", ErrNotAllowed, from)
	}
	t, ok := table[ev]
	if !ok {
		return from, fmt.Errorf("%w: %q is not a lifecycle event", ErrNotAllowed, ev)
	}
	switch {
	case !slices.Contains(t.from, from):
	case t.to == "":
		return from, nil
	default:
		return t.to, nil
	}
	return from, fmt.Errorf("%w: %s while %s", ErrNotAllowed, ev, from)
}

// Can says whether event may happen in status.
func Can(status store.Status, ev Event) bool {
	_, err := Next(status, ev)
	return err == nil
}

// Starting says whether a start is under way (initializing up to
// replication_starting).
func Starting(s store.Status) bool { return slices.Contains(starting, s) }

// Live says whether the replication should have a replicator: it is
// replication_starting or running.
func Live(s store.Status) bool {
	return s == store.StatusReplicationStarting || s == store.StatusRunning
}

// Settled says whether nothing runs and nothing is under way: created,
// stopped or failed.
func Settled(s store.Status) bool { return slices.Contains(settled, s) }

// Stop reasons, as DMS words them (StopReason).
const (
	StopNormal       = "Stop Reason NORMAL"
	StopFullLoadOnly = "Stop Reason FULL_LOAD_ONLY_FINISHED"
	StopFatal        = "Stop Reason FATAL_ERROR"
	StopAtServerTime = "Stop Reason STOPPED_AT_SERVER_TIME"
	StopAtCommitTime = "Stop Reason STOPPED_AT_COMMIT_TIME"
)
