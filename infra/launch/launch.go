// Package launch is the vocabulary the launchers (infra/process, infra/ecs)
// and the control loop that drives them (capacity/control) share: what a
// replicator is given to run with, and what a launcher reports back. It
// holds no policy: a launcher relays the replicator's statistics as the
// replicator wrote them, and the control loop reads them.
package launch

import "encoding/json"

// UnitMiB is the memory of one capacity unit, as DMS Serverless counts it.
const UnitMiB = 2048

// Size is what one replicator runs with.
type Size struct {
	Units int
	// MemoryLimitMiB caps the replicator (GOMEMLIMIT for a local process,
	// the task memory for ECS).
	MemoryLimitMiB int
}

// Report is what a launcher learns about one replicator.
type Report struct {
	ID string // the replication config ARN
	// Stats is the replicator's last statistics document (runtime.Snapshot
	// as JSON), nil before its first.
	Stats json.RawMessage
	// Exited is set once the replicator has ended; ExitErr is its last
	// error line, empty when it ended cleanly.
	Exited  bool
	ExitErr string
	// Killed says it ended by a signal it did not ask for (kill -9, the
	// OOM killer): not a failure of the replication, which the control
	// loop launches again from the checkpoint.
	Killed bool
}
