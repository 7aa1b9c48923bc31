package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqltarget"
	"github.com/sluicedb/sluice/runtime/pgtarget"
	"github.com/sluicedb/sluice/test/testenv"
)

// fenceCase drives two targets of one task, with fencing tokens 1 and 2,
// the way an old and a new replicator would: once the newer has claimed the
// target, the older can neither commit changes nor save its state, and the
// position stays the newer one's.
func fenceCase(t *testing.T, open func(fence int64) runtime.Target) {
	ctx := context.Background()
	const task = "fence-task"
	oldT, newT := open(1), open(2)
	defer oldT.Close(ctx)
	defer newT.Close(ctx)
	if _, err := oldT.State(ctx, task); err != nil {
		t.Fatalf("the first replicator's claim: %v", err)
	}
	stats := runtime.NewStats()
	oldA, err := oldT.Applier(ctx, task, nil, runtime.ApplyOptions{}, stats)
	if err != nil {
		t.Fatal(err)
	}
	defer oldA.Close(ctx)
	p1, _ := runtime.ParsePosition("0/100")
	if err := oldA.Commit(ctx, p1, time.Now(), nil); err != nil {
		t.Fatalf("the lease holder's commit: %v", err)
	}
	if _, err := newT.State(ctx, task); err != nil {
		t.Fatalf("the second replicator's claim: %v", err)
	}
	p2, _ := runtime.ParsePosition("0/200")
	// On PostgreSQL the claim ended the old replicator's sessions; a
	// session it opens afterwards meets the fence.
	oldA2, err := oldT.Applier(ctx, task, nil, runtime.ApplyOptions{}, stats)
	if err != nil {
		t.Fatal(err)
	}
	defer oldA2.Close(ctx)
	err = oldA2.Commit(ctx, p2, time.Now(), nil)
	if err == nil || !strings.Contains(err.Error(), "taken over by a newer replicator") {
		t.Fatalf("the fenced-off replicator's commit: %v, want refused as taken over", err)
	}
	if err := oldT.SaveState(ctx, task, runtime.State{Phase: runtime.PhaseCDC, Position: p2}); err == nil || !strings.Contains(err.Error(), "taken over") {
		t.Fatalf("the fenced-off replicator's SaveState: %v, want refused", err)
	}
	if _, err := open(1).State(ctx, task); err == nil {
		t.Fatal("an older token claimed the target back")
	}
	st, err := newT.State(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if st.Position == nil || st.Position.Compare(p1) != 0 {
		t.Fatalf("stored position %v, want %v (the old replicator's refused commit must not land)", st.Position, p1)
	}
	newA, err := newT.Applier(ctx, task, nil, runtime.ApplyOptions{}, stats)
	if err != nil {
		t.Fatal(err)
	}
	defer newA.Close(ctx)
	if err := newA.Commit(ctx, p2, time.Now(), nil); err != nil {
		t.Fatalf("the new lease holder's commit: %v", err)
	}
}

func TestFencePostgres(t *testing.T) {
	db := testenv.NewPGDatabase(t, "fence")
	fenceCase(t, func(fence int64) runtime.Target {
		tg, err := pgtarget.New(context.Background(), pgtarget.Config{ConnString: testenv.PGURL(db), ControlSchema: "public", Fence: fence, Task: "fence-task"})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	})
}

func TestFenceMySQL(t *testing.T) {
	db := testenv.NewMySQLDatabase(t, "fence")
	ep := testenv.MySQLEndpoint()
	fenceCase(t, func(fence int64) runtime.Target {
		return mysqltarget.New(mysqltarget.Config{Server: ep.MySQLServer(), ControlSchema: db, Fence: fence, Task: "fence-task"})
	})
}
