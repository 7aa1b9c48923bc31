// Package launch is the vocabulary the launchers (infra/process, infra/ecs)
// and the control loop that drives them (capacity/control) share: what a
// replicator is given to run with, and what a launcher reports back. It
// holds no policy: a launcher relays the replicator's statistics as the
// replicator wrote them, and the control loop reads them.
package launch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
)

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
	// Holder is the name the replicator holds its lease under, which the
	// launcher gave it (SLUICE_LEASE_HOLDER); empty when unknown (a task
	// adopted from an earlier server). A killed replicator's lease can
	// then be released at once instead of waiting for it to lapse.
	Holder string
}

// HolderEnv names the variable that gives a replicator its lease holder
// name.
const HolderEnv = "SLUICE_LEASE_HOLDER"

// NewHolder returns a fresh lease holder name for a replicator launched
// by kind (process, ecs).
func NewHolder(kind string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails: crypto/rand aborts the program instead
	host, _ := os.Hostname()
	return kind + "/" + host + "/" + hex.EncodeToString(b)
}
