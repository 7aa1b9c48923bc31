package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// dueDeprovisions reads the deprovision timers due at now.
func dueDeprovisions(t *testing.T, st *store.Store, now time.Time) []string {
	t.Helper()
	due, err := st.DueDeprovisions(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return due
}

// TestDeprovisionTimer: the deprovision timer follows the record, in the
// same update: set while a stopped or failed replication holds capacity
// with a deprovision time, cleared by any update after which it does not.
func TestDeprovisionTimer(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := replication(t, st, "r")
	// Whole milliseconds: a record's times are kept to the millisecond.
	now := time.Now().Truncate(time.Millisecond)
	provisioned := func(r *store.ReplicationRecord) {
		r.ProvisionData = &store.ProvisionData{ProvisionState: store.Provisioned, ProvisionedCapacityUnits: 2}
		r.ReplicationDeprovisionTime = store.At(now.Add(-time.Minute))
	}
	cases := []struct {
		name string
		set  func(*store.ReplicationRecord)
		due  bool
	}{
		// The timer a stop sets.
		{"stopped, provisioned", func(r *store.ReplicationRecord) { r.Status = store.StatusStopped; provisioned(r) }, true},
		// A start clears it: the capacity is in use again.
		{"running", func(r *store.ReplicationRecord) { r.Status = store.StatusRunning; provisioned(r) }, false},
		// A failure releases capacity as a stop does.
		{"failed, provisioned", func(r *store.ReplicationRecord) { r.Status = store.StatusFailed; provisioned(r) }, true},
		// Still stopping: the replicator may hold the capacity.
		{"stopping", func(r *store.ReplicationRecord) { r.Status = store.StatusStopping; provisioned(r) }, false},
		// Released already: nothing to do.
		{"stopped, deprovisioned", func(r *store.ReplicationRecord) {
			r.Status = store.StatusStopped
			provisioned(r)
			r.ProvisionData.ProvisionState = store.Deprovisioned
		}, false},
		// Released while the sweep claims it: not due again.
		{"stopped, deprovisioning", func(r *store.ReplicationRecord) {
			r.Status = store.StatusStopped
			provisioned(r)
			r.ProvisionData.ProvisionState = store.Deprovisioning
		}, false},
		// No deprovision time: nothing says when.
		{"stopped, no time", func(r *store.ReplicationRecord) {
			r.Status = store.StatusStopped
			provisioned(r)
			r.ReplicationDeprovisionTime = nil
		}, false},
		// Never provisioned.
		{"stopped, no capacity", func(r *store.ReplicationRecord) {
			r.Status = store.StatusStopped
			provisioned(r)
			r.ProvisionData = nil
		}, false},
	}
	for _, c := range cases {
		if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error { c.set(r); return nil }); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if due := dueDeprovisions(t, st, now); (len(due) == 1 && due[0] == arn) != c.due || len(due) > 1 {
			t.Errorf("%s: due %v, want due %v", c.name, due, c.due)
		}
	}

	// A deprovision time to come is due from then on, not before.
	at := now.Add(time.Hour)
	if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error {
		r.Status = store.StatusStopped
		provisioned(r)
		r.ReplicationDeprovisionTime = store.At(at)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if due := dueDeprovisions(t, st, at.Add(-time.Millisecond)); len(due) != 0 {
		t.Errorf("due before its time: %v", due)
	}
	if due := dueDeprovisions(t, st, at); !slices.Equal(due, []string{arn}) {
		t.Errorf("due at its time: %v, want %s", due, arn)
	}
	// An update that leaves the record as it was keeps the timer. (Within
	// a millisecond: a time read back from the record can be some tens of
	// nanoseconds early, as store.Time decodes through a float.)
	if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error { r.Runs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if due := dueDeprovisions(t, st, at.Add(-time.Second)); len(due) != 0 {
		t.Errorf("due a second early after an update: %v", due)
	}
	if due := dueDeprovisions(t, st, at); !slices.Equal(due, []string{arn}) {
		t.Errorf("due at its time after an update: %v, want %s", due, arn)
	}
	// A refused update (fn's error) leaves the timer as it was.
	if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error {
		r.Status = store.StatusRunning
		return errors.New("refused")
	}); err == nil {
		t.Fatal("a refused update succeeded")
	}
	if due := dueDeprovisions(t, st, at); !slices.Equal(due, []string{arn}) {
		t.Errorf("due after a refused update: %v, want %s", due, arn)
	}
}

// TestDeprovisionClaimedOnce: ten sweepers claiming the same due timer
// with a compare-and-set on the record (as the runner's sweep does): one
// wins, and the timer is gone with its claim.
func TestDeprovisionClaimedOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := replication(t, st, "r")
	now := time.Now()
	if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error {
		r.Status = store.StatusStopped
		r.ProvisionData = &store.ProvisionData{ProvisionState: store.Provisioned, ProvisionedCapacityUnits: 4}
		r.ReplicationDeprovisionTime = store.At(now.Add(-time.Second))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	claimed := errors.New("claimed elsewhere")
	var wins, losses atomic.Int64
	atOnce(10, func(int) {
		for _, due := range dueDeprovisions(t, st, now) {
			_, err := st.UpdateReplication(ctx, due, func(r *store.ReplicationRecord) error {
				if r.ProvisionData == nil || r.ProvisionData.ProvisionState != store.Provisioned {
					return claimed
				}
				r.ProvisionData.ProvisionState = store.Deprovisioning
				return nil
			})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, claimed):
				losses.Add(1)
			default:
				t.Error(err)
			}
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d sweepers claimed the timer (%d lost), want 1", wins.Load(), losses.Load())
	}
	if due := dueDeprovisions(t, st, now.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("timers left after the claim: %v", due)
	}
	if r, err := st.Replication(ctx, arn); err != nil || r.ProvisionData.ProvisionState != store.Deprovisioning || r.ProvisionData.ProvisionedCapacityUnits != 4 {
		t.Fatalf("after the claim: %+v, %v; want deprovisioning with its 4 units", r.ProvisionData, err)
	}
}

// schedule stores a schedule whose next run is next (none if nil).
func schedule(t *testing.T, st *store.Store, name string, next *time.Time) {
	t.Helper()
	sc := &store.Schedule{Name: name, Expression: "rate(1 hour)", Payload: []byte(`{}`), CreatedAt: time.Now().UTC(), NextRun: next}
	if err := st.CreateSchedule(context.Background(), sc); err != nil {
		t.Fatalf("create schedule %s: %v", name, err)
	}
}

// stored returns schedule name as stored, nil if there is none.
func stored(t *testing.T, st *store.Store, name string) *store.Schedule {
	t.Helper()
	all, err := st.Schedules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		if sc.Name == name {
			return sc
		}
	}
	return nil
}

// dueSchedules reads the schedules due at now.
func dueSchedules(t *testing.T, st *store.Store, now time.Time) []string {
	t.Helper()
	due, err := st.DueSchedules(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return due
}

// TestClaimScheduleOnce: ten servers, each claiming every due run of 20
// schedules at once: each run goes to one of them, with the run it
// claimed; each schedule moves on to its next run, recorded as having run
// now.
func TestClaimScheduleOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	now := time.Now().UTC().Truncate(time.Second)
	run, next := now.Add(-time.Minute), now.Add(time.Hour)
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("s%02d", i))
		schedule(t, st, names[i], &run)
	}
	var mu sync.Mutex
	wins := map[string]int{}
	atOnce(10, func(int) {
		for _, name := range dueSchedules(t, st, now) {
			sc, ok, err := st.ClaimSchedule(ctx, name, now, func(*store.Schedule) *time.Time { return &next })
			if err != nil {
				t.Error(err)
			}
			if !ok {
				continue
			}
			if sc.Name != name || sc.NextRun == nil || !sc.NextRun.Equal(run) || sc.LastRun != nil {
				t.Errorf("the claim of %s returned %s, next %v, last %v; want the run claimed (%s) and no earlier run", name, sc.Name, sc.NextRun, sc.LastRun, run)
			}
			mu.Lock()
			wins[name]++
			mu.Unlock()
		}
	})
	for _, name := range names {
		if wins[name] != 1 {
			t.Errorf("the run of %s was claimed %d times, want once", name, wins[name])
		}
		sc := stored(t, st, name)
		if sc.NextRun == nil || !sc.NextRun.Equal(next) || sc.LastRun == nil || !sc.LastRun.Equal(now) {
			t.Errorf("%s stored with next %v, last %v; want next %s, last %s", name, sc.NextRun, sc.LastRun, next, now)
		}
	}
	if due := dueSchedules(t, st, now); len(due) != 0 {
		t.Fatalf("still due after the claims: %v", due)
	}
	if due := dueSchedules(t, st, next); !slices.Equal(due, names) {
		t.Fatalf("due at the next run: %v, want all 20", due)
	}
}

// TestClaimSchedule: the claims that must not fire, and the last run.
func TestClaimSchedule(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	now := time.Now().UTC().Truncate(time.Second)
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)
	never := func(*store.Schedule) *time.Time { t.Error("next computed for a run not claimed"); return nil }
	claim := func(name string, next func(*store.Schedule) *time.Time) bool {
		t.Helper()
		_, ok, err := st.ClaimSchedule(ctx, name, now, next)
		if err != nil {
			t.Fatalf("claim %s: %v", name, err)
		}
		return ok
	}

	// Not due yet: no claim, and its timer stays.
	schedule(t, st, "soon", &later)
	if claim("soon", never) {
		t.Error("claimed a run not due")
	}
	if due := dueSchedules(t, st, later); !slices.Equal(due, []string{"soon"}) {
		t.Errorf("due at its time: %v, want soon", due)
	}

	// The last run (an at() schedule, or a cron whose years are over): claimed once, then no timer and no next run.
	schedule(t, st, "once", &earlier)
	if !claim("once", func(*store.Schedule) *time.Time { return nil }) {
		t.Fatal("the due last run was not claimed")
	}
	if claim("once", never) {
		t.Error("the last run was claimed twice")
	}
	if sc := stored(t, st, "once"); sc.NextRun != nil || sc.LastRun == nil || !sc.LastRun.Equal(now) {
		t.Errorf("after its last run: next %v, last %v; want none and %s", sc.NextRun, sc.LastRun, now)
	}
	if due := dueSchedules(t, st, now.Add(24*time.Hour)); slices.Contains(due, "once") {
		t.Errorf("a schedule without runs left is still timed: %v", due)
	}

	// Created with no run at all: never timed.
	schedule(t, st, "none", nil)
	if claim("none", never) {
		t.Error("claimed a schedule without runs")
	}

	// Deleted after a sweep found it due: no claim, no error, and a timer a half-done delete left is dropped.
	schedule(t, st, "gone", &earlier)
	if err := st.DeleteSchedule(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if claim("gone", never) {
		t.Error("claimed a deleted schedule")
	}
	// The timer removal of a delete lost (DeleteSchedule's steps are separate).
	if err := st.Redis().ZAdd(ctx, st.Key("timers", "schedules"), redis.Z{Score: float64(earlier.UnixMilli()), Member: "gone"}).Err(); err != nil {
		t.Fatal(err)
	}
	if claim("gone", never) {
		t.Error("claimed a deleted schedule with a timer left")
	}
	if due := dueSchedules(t, st, now); slices.Contains(due, "gone") {
		t.Errorf("the deleted schedule's timer was not dropped: %v", due)
	}
}

// TestScheduleLifecycle: one schedule per name, however many create it at
// once (ten servers creating the same 20 names); a delete removes it with
// its timer, and a second delete finds nothing.
func TestScheduleLifecycle(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	run := time.Now().UTC().Truncate(time.Second)
	var mu sync.Mutex
	wins := map[string]int{}
	atOnce(10, func(int) {
		for i := range 20 {
			sc := &store.Schedule{Name: fmt.Sprintf("s%02d", i), Expression: "rate(1 hour)", Payload: []byte(`{}`), NextRun: &run}
			switch err := st.CreateSchedule(ctx, sc); {
			case err == nil:
				mu.Lock()
				wins[sc.Name]++
				mu.Unlock()
			case !errors.Is(err, store.ErrExists):
				t.Errorf("create %s: %v, want nil or ErrExists", sc.Name, err)
			}
		}
	})
	for i := range 20 {
		if name := fmt.Sprintf("s%02d", i); wins[name] != 1 {
			t.Errorf("%d creates of %s succeeded, want 1", wins[name], name)
		}
	}
	if all, err := st.Schedules(ctx); err != nil || len(all) != 20 {
		t.Fatalf("schedules: %d, %v; want 20", len(all), err)
	}
	for i := range 19 {
		if err := st.DeleteSchedule(ctx, fmt.Sprintf("s%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if due := dueSchedules(t, st, run.Add(time.Hour)); !slices.Equal(due, []string{"s19"}) {
		t.Fatalf("timers after 19 deletes: %v, want s19's", due)
	}
	if all, err := st.Schedules(ctx); err != nil || len(all) != 1 || all[0].Name != "s19" {
		t.Fatalf("schedules after 19 deletes: %v, %v; want s19", all, err)
	}
	if err := st.DeleteSchedule(ctx, "s00"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}
