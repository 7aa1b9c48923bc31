package store_test

import (
	"context"
	"testing"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// task returns the task recorded for replication id.
func task(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	got, err := st.ReplicatorTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestForgetReplicatorTask: forgetting a task deletes the record only
// while it is still of that task, so the watcher of a task that ended
// cannot forget the newer task launched after it.
func TestForgetReplicatorTask(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	if got := task(t, st, "arn:cfg:r"); got != "" {
		t.Fatalf("task before any: %q, want none", got)
	}
	for _, c := range []struct{ put, forget, left string }{
		{"task/1", "task/1", ""},       // the task recorded: forgotten
		{"task/2", "task/1", "task/2"}, // an older task: the newer record stays
		{"task/3", "task/", "task/3"},  // a prefix is another task
	} {
		if err := st.PutReplicatorTask(ctx, "arn:cfg:r", c.put); err != nil {
			t.Fatal(err)
		}
		if err := st.ForgetReplicatorTask(ctx, "arn:cfg:r", c.forget); err != nil {
			t.Fatal(err)
		}
		if got := task(t, st, "arn:cfg:r"); got != c.left {
			t.Errorf("recorded %s, forgot %s: %q left, want %q", c.put, c.forget, got, c.left)
		}
	}
	// Forgetting when nothing is recorded is no error and records nothing.
	if err := st.ForgetReplicatorTask(ctx, "arn:cfg:none", "task/1"); err != nil || task(t, st, "arn:cfg:none") != "" {
		t.Fatalf("forget with no record: %v, %q", err, task(t, st, "arn:cfg:none"))
	}
}
