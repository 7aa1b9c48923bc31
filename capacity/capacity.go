package capacity

import (
	"context"
	"fmt"

	"github.com/sluicedb/sluice/runtime"
)

// UnitMiB is the memory of one capacity unit, as DMS Serverless counts it.
const UnitMiB = 2048

// Plan is the capacity one replicator runs with.
type Plan struct {
	Units int
	// MemoryLimitMiB caps the replicator process (GOMEMLIMIT for a local
	// process, the task memory for ECS).
	MemoryLimitMiB int
	// BufferMiB is the change buffer's budget (MemoryLimitTotal).
	BufferMiB int
	// FullLoadParallelism is MaxFullLoadSubTasks unless the settings say.
	FullLoadParallelism int
	Reason              string
}

// Fixed returns the plan every replication gets until the planner sizes
// them: the config's minimum capacity (DMS's default of 1 unit if unset),
// capped by its maximum.
func Fixed(minUnits, maxUnits int) Plan {
	u := minUnits
	if u <= 0 {
		u = 1
	}
	if maxUnits > 0 && u > maxUnits {
		u = maxUnits
	}
	return Plan{
		Units: u, MemoryLimitMiB: u * UnitMiB, BufferMiB: u * UnitMiB / 4, FullLoadParallelism: 8,
		Reason: fmt.Sprintf("Provisioned %d capacity unit(s): the minimum of the config's ComputeConfig; sizing by workload is not enabled.", u),
	}
}

// Report is what a launcher learns about one replicator.
type Report struct {
	ID string // the replication config ARN
	// Stats is the replicator's last statistics, nil before its first.
	Stats *runtime.Snapshot
	// Exited is set once the replicator has ended; ExitErr is its last
	// error line, empty when it ended cleanly.
	Exited  bool
	ExitErr string
	// Killed says it ended by a signal it did not ask for (kill -9, the
	// OOM killer): not a failure of the replication, which the lease
	// sweep relaunches once the dead replicator's lease lapses.
	Killed bool
}

// Launcher starts and stops replicators.
type Launcher interface {
	// Launch starts the replicator of replication id with a task document
	// (runtime/task JSON; it holds passwords, so it must not be written
	// where others can read it or logged). Reports arrive on the channel
	// given to the launcher's constructor, at least every few seconds while
	// it runs and once when it ends. Launching an id that has a replicator
	// replaces it: its lease lapsed, so the new one fences it off, and its
	// reports are dropped.
	Launch(ctx context.Context, id string, task []byte, plan Plan) error
	// Stop asks replication id's replicator to stop gracefully: it commits
	// its position and ends, and the last report says so. Stopping an id
	// that does not run is not an error.
	Stop(ctx context.Context, id string) error
	// Running says whether id has a replicator.
	Running(id string) bool
}
