package control

import (
	"sync"
	"time"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/store"
)

// runs is what the loop remembers of the replications it runs between
// their reports. All of it can be lost with the process: a new server reads
// the statistics base from Redis, and a relaunch or resize that was under
// way is found again by the lease sweep.
type runs struct {
	mu sync.Mutex
	// restarting holds the replications whose replicator was stopped to be
	// launched again (a table reload, a resize).
	restarting map[string]bool
	// bases are the statistics each run counts on from (see
	// store.CarryTableStats), kept here so a report does not read them
	// from Redis every second.
	bases map[string][]store.TableStatistics
	// resizes holds the plans of replications being relaunched at another
	// size (the autoscaler's decision), until they are.
	resizes map[string]capacity.Plan
	// bounds are the running replications' Min/MaxCapacityUnits, read once
	// a run: a config cannot change while its replication runs.
	bounds map[string][2]int
	// dropWarned is when each failing source drop was last logged.
	dropWarned map[string]time.Time
}

// dropFailed notes that arn's source drop failed and says whether to log
// it: once every every.
func (r *runs) dropFailed(arn string, every time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropWarned == nil {
		r.dropWarned = map[string]time.Time{}
	}
	if time.Since(r.dropWarned[arn]) < every {
		return false
	}
	r.dropWarned[arn] = time.Now()
	return true
}

// restart marks arn's replicator to be launched again when it exits; false
// when it already was.
func (r *runs) restart(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restarting[arn] {
		return false
	}
	if r.restarting == nil {
		r.restarting = map[string]bool{}
	}
	r.restarting[arn] = true
	return true
}

// takeRestart says whether arn's replicator was to be launched again, and
// forgets it.
func (r *runs) takeRestart(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.restarting[arn]
	delete(r.restarting, arn)
	return was
}

// resize marks arn's replicator to be launched again at plan's size, unless
// it is already to be launched again.
func (r *runs) resize(arn string, plan capacity.Plan) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restarting[arn] {
		return false
	}
	if r.restarting == nil {
		r.restarting = map[string]bool{}
	}
	if r.resizes == nil {
		r.resizes = map[string]capacity.Plan{}
	}
	r.restarting[arn] = true
	r.resizes[arn] = plan
	return true
}

// busy says whether arn's replicator is being launched again.
func (r *runs) busy(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarting[arn]
}

// takeResize returns the size arn is being relaunched at, and forgets it.
func (r *runs) takeResize(arn string) (capacity.Plan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.resizes[arn]
	delete(r.resizes, arn)
	return p, ok
}

func (r *runs) setBase(arn string, base []store.TableStatistics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bases == nil {
		r.bases = map[string][]store.TableStatistics{}
	}
	r.bases[arn] = base
}

func (r *runs) base(arn string) ([]store.TableStatistics, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bases[arn]
	return b, ok
}

func (r *runs) setBounds(arn string, b [2]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bounds == nil {
		r.bounds = map[string][2]int{}
	}
	r.bounds[arn] = b
}

func (r *runs) getBounds(arn string) ([2]int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bounds[arn]
	return b, ok
}

// ended forgets what a finished run's autoscaling kept.
func (r *runs) ended(arn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.resizes, arn)
	delete(r.bounds, arn)
}
