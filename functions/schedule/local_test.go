package schedule

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// countingAPI counts the starts and stops it is asked for.
type countingAPI struct{ starts, stops atomic.Int64 }

func (c *countingAPI) StartReplication(context.Context, string, store.StartType) (*store.ReplicationRecord, error) {
	c.starts.Add(1)
	return &store.ReplicationRecord{}, nil
}

func (c *countingAPI) StopReplication(context.Context, string) (*store.ReplicationRecord, error) {
	c.stops.Add(1)
	return &store.ReplicationRecord{}, nil
}

// TestFireOnce: ten servers firing the same due schedules at once run
// each occurrence once; a rate schedule moves on to its next run and an
// at() schedule has none left.
func TestFireOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, 12) // this test's Redis database
	api := &countingAPI{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := &Local{Store: st, Log: log, Handler: &Handler{API: api, Log: log}}
	now := time.Now().UTC().Truncate(time.Second)
	arn := "arn:aws:dms:us-east-1:000000000000:replication-config:X"
	start, _ := json.Marshal(Event{Action: ActionStart, ReplicationConfigArn: arn})
	stop, _ := json.Marshal(Event{Action: ActionStop, ReplicationConfigArn: arn})
	for _, sc := range []*store.Schedule{
		{Name: "once", Expression: "at(" + now.Add(-30*time.Minute).Format("2006-01-02T15:04:05") + ")", Payload: start, CreatedAt: now.Add(-time.Hour)},
		{Name: "hourly", Expression: "rate(1 hour)", Payload: stop, CreatedAt: now.Add(-90 * time.Minute)},
	} {
		if err := l.Create(ctx, sc); err != nil {
			t.Fatalf("create %s: %v", sc.Name, err)
		}
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Fire(ctx, now); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s, p := api.starts.Load(), api.stops.Load(); s != 1 || p != 1 {
		t.Fatalf("%d starts and %d stops, want each schedule fired once", s, p)
	}
	all, err := st.Schedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		switch sc.Name {
		case "once":
			if sc.NextRun != nil {
				t.Errorf("a fired at() schedule runs again at %s", sc.NextRun)
			}
		case "hourly":
			// Created 90 min ago: it ran 30 min ago (claimed now), next in 30 min.
			if want := now.Add(30 * time.Minute); sc.NextRun == nil || !sc.NextRun.Equal(want) {
				t.Errorf("the rate schedule's next run is %v, want %s", sc.NextRun, want)
			}
		}
	}
	if err := l.Fire(ctx, now.Add(time.Minute)); err != nil || api.starts.Load()+api.stops.Load() != 2 {
		t.Fatalf("a later sweep fired again: %v, %d starts, %d stops", err, api.starts.Load(), api.stops.Load())
	}
}
