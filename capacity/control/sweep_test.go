package control

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// countingHandler counts the log records with a given message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

// TestSweepOnce: ten sweepers at once over one due deprovision timer, in
// the real Redis, release the capacity exactly once.
func TestSweepOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	st := storetest.Fresh(t, 11) // this test's Redis database
	for _, arn := range []string{"arn:src", "arn:dst"} {
		ep := &store.EndpointRecord{}
		ep.EndpointArn, ep.EndpointIdentifier = arn, arn[4:]
		if err := st.CreateEndpoint(ctx, ep, nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &store.Config{ReplicationConfigIdentifier: "sweep", ReplicationConfigArn: "arn:cfg", SourceEndpointArn: "arn:src", TargetEndpointArn: "arn:dst", ReplicationType: "cdc"}
	rep := &store.ReplicationRecord{}
	rep.ReplicationConfigArn, rep.ReplicationConfigIdentifier, rep.Status = "arn:cfg", "sweep", store.StatusCreated
	if err := st.CreateConfig(ctx, cfg, rep, nil); err != nil {
		t.Fatal(err)
	}
	r := New(Config{Store: st, DeprovisionAfter: time.Millisecond})
	if _, err := st.UpdateReplication(ctx, "arn:cfg", func(rep *store.ReplicationRecord) error {
		rep.ProvisionData = &store.ProvisionData{ProvisionState: store.Provisioned, ProvisionedCapacityUnits: 2}
		rep.Status = store.StatusStopping
		return r.end(rep, lifecycle.StopNormal, "")
	}); err != nil {
		t.Fatal(err)
	}
	due, err := st.DueDeprovisions(ctx, time.Now().Add(time.Second))
	if err != nil || len(due) != 1 {
		t.Fatalf("timers due = %v, %v; want the one replication", due, err)
	}
	time.Sleep(10 * time.Millisecond)
	var released atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := New(Config{Store: st, Log: slog.New(countingHandler{slog.DiscardHandler, "capacity released", &released})})
			if err := s.Sweep(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := released.Load(); n != 1 {
		t.Fatalf("capacity released %d times, want once", n)
	}
	got, err := st.Replication(ctx, "arn:cfg")
	if err != nil {
		t.Fatal(err)
	}
	if got.ProvisionData.ProvisionState != store.Deprovisioned || got.ProvisionData.ProvisionedCapacityUnits != 0 {
		t.Fatalf("ProvisionData = %+v, want deprovisioned with no units", got.ProvisionData)
	}
	if due, _ := st.DueDeprovisions(ctx, time.Now().Add(time.Hour)); len(due) != 0 {
		t.Fatalf("timers left: %v", due)
	}
}
