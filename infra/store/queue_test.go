package store_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// queued reads what waits on queue.
func queued(t *testing.T, st *store.Store, queue string) []string {
	t.Helper()
	arns, err := st.Queued(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	return arns
}

// TestDequeueOnce: of ten consumers claiming one queued request at once,
// one gets it.
func TestDequeueOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	if err := st.Enqueue(ctx, store.QueueStarts, "arn:cfg:r"); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	atOnce(10, func(int) {
		ok, err := st.Dequeue(ctx, store.QueueStarts, "arn:cfg:r")
		if err != nil {
			t.Error(err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d consumers claimed the request, want 1", wins.Load())
	}
	if left := queued(t, st, store.QueueStarts); len(left) != 0 {
		t.Fatalf("left on the queue: %v", left)
	}
	// A request queued after the claim is a new one: it waits again.
	if err := st.Enqueue(ctx, store.QueueStarts, "arn:cfg:r"); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Dequeue(ctx, store.QueueStarts, "arn:cfg:r"); err != nil || !ok {
		t.Fatalf("claim of the request queued again: %v, %v; want it claimed", ok, err)
	}
}

// TestQueues: a replication waits on a queue once however often it is
// queued; the queue lists the oldest first; queues are separate, and
// claiming what is not queued gets nothing.
func TestQueues(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	// Names out of alphabetical order, a few milliseconds apart, so that
	// the order seen is the order queued.
	for _, arn := range []string{"arn:cfg:c", "arn:cfg:a", "arn:cfg:b"} {
		if err := st.Enqueue(ctx, store.QueueStops, arn); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	for range 3 {
		if err := st.Enqueue(ctx, store.QueueReloads, "arn:cfg:a"); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := queued(t, st, store.QueueStops), []string{"arn:cfg:c", "arn:cfg:a", "arn:cfg:b"}; !slices.Equal(got, want) {
		t.Fatalf("stops queued: %v, want %v", got, want)
	}
	if got := queued(t, st, store.QueueReloads); !slices.Equal(got, []string{"arn:cfg:a"}) {
		t.Fatalf("reloads queued: %v, want arn:cfg:a once", got)
	}
	if got := queued(t, st, store.QueueStarts); len(got) != 0 {
		t.Fatalf("starts queued: %v, want none", got)
	}
	// A claim on another queue, or of what was never queued, gets nothing and takes nothing.
	for _, c := range []struct{ queue, arn string }{
		{store.QueueStarts, "arn:cfg:a"}, // queued, but on other queues
		{store.QueueStops, "arn:cfg:z"},  // never queued
	} {
		if ok, err := st.Dequeue(ctx, c.queue, c.arn); err != nil || ok {
			t.Errorf("claim %s from %s: %v, %v; want nothing", c.arn, c.queue, ok, err)
		}
	}
	if ok, err := st.Dequeue(ctx, store.QueueStops, "arn:cfg:a"); err != nil || !ok {
		t.Fatalf("claim arn:cfg:a from stops: %v, %v", ok, err)
	}
	if got, want := queued(t, st, store.QueueStops), []string{"arn:cfg:c", "arn:cfg:b"}; !slices.Equal(got, want) {
		t.Fatalf("stops left: %v, want %v", got, want)
	}
	if got := queued(t, st, store.QueueReloads); !slices.Equal(got, []string{"arn:cfg:a"}) {
		t.Fatalf("reloads after a claim from stops: %v, want arn:cfg:a", got)
	}
}
