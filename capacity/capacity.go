package capacity

import (
	"fmt"

	"github.com/sluicedb/sluice/infra/launch"
)

// UnitMiB is the memory of one capacity unit, as DMS Serverless counts it.
const UnitMiB = launch.UnitMiB

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

// Size is what a launcher needs of the plan.
func (p Plan) Size() launch.Size {
	return launch.Size{Units: p.Units, MemoryLimitMiB: p.MemoryLimitMiB}
}
