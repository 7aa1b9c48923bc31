package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// redisDB is the Redis database this package's tests own: each test empties
// it first (storetest.Fresh), so they run one after another, never in
// parallel.
const redisDB = 5

// atOnce runs fn(0) … fn(n-1) in n goroutines released together, and
// waits for them: the callers of a claim arrive as close to the same
// moment as the scheduler allows.
func atOnce(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// eventually polls cond until it holds, failing the test if it has not
// within 5 s (generous: the expiries waited for are 200–300 ms, and a
// loaded machine must not make the test fail).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endpoint stores an endpoint named id with ARN "arn:ep:"+id.
func endpoint(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	rec := &store.EndpointRecord{}
	rec.EndpointArn, rec.EndpointIdentifier, rec.Created = "arn:ep:"+id, id, *store.At(time.Now())
	if err := st.CreateEndpoint(context.Background(), rec, nil); err != nil {
		t.Fatalf("create endpoint %s: %v", id, err)
	}
	return rec.EndpointArn
}

// replication stores a config named id (ARN "arn:cfg:"+id) between two
// new endpoints, with its replication in status created, and returns the
// ARN.
func replication(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	src, dst := endpoint(t, st, id+"-src"), endpoint(t, st, id+"-dst")
	cfg := &store.Config{ReplicationConfigIdentifier: id, ReplicationConfigArn: "arn:cfg:" + id, SourceEndpointArn: src, TargetEndpointArn: dst, ReplicationType: "cdc"}
	rep := &store.ReplicationRecord{}
	rep.ReplicationConfigArn, rep.ReplicationConfigIdentifier, rep.Status = cfg.ReplicationConfigArn, id, store.StatusCreated
	if err := st.CreateConfig(context.Background(), cfg, rep, nil); err != nil {
		t.Fatalf("create config %s: %v", id, err)
	}
	return cfg.ReplicationConfigArn
}

// TestCreateEndpointOnce: of ten creates of one identifier at once, one
// stores its endpoint and nine fail with ErrExists.
func TestCreateEndpointOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	var won atomic.Int64
	var winner atomic.Value
	atOnce(10, func(i int) {
		rec := &store.EndpointRecord{}
		rec.EndpointArn, rec.EndpointIdentifier, rec.Created = fmt.Sprintf("arn:ep:%d", i), "shared", *store.At(time.Now())
		switch err := st.CreateEndpoint(ctx, rec, nil); {
		case err == nil:
			won.Add(1)
			winner.Store(rec.EndpointArn)
		case !errors.Is(err, store.ErrExists):
			t.Errorf("create %d: %v, want nil or ErrExists", i, err)
		}
	})
	if n := won.Load(); n != 1 {
		t.Fatalf("%d creates of one identifier succeeded, want 1", n)
	}
	all, err := st.Endpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].EndpointArn != winner.Load() {
		t.Fatalf("endpoints stored: %d (first %+v), want only the winner %v", len(all), all, winner.Load())
	}
}

// TestRenameEndpointOnce: of ten endpoints renamed to one free identifier
// at once, one gets it and nine fail with ErrExists keeping their own (ten
// rounds, so that the renames overlap on warm connections).
func TestRenameEndpointOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	for round := range 10 {
		arns := make([]string, 10)
		for i := range arns {
			arns[i] = endpoint(t, st, fmt.Sprintf("r%d-e%d", round, i))
		}
		name := fmt.Sprintf("r%d-shared", round)
		var won atomic.Int64
		atOnce(10, func(i int) {
			_, err := st.UpdateEndpoint(ctx, arns[i], func(r *store.EndpointRecord) error { r.EndpointIdentifier = name; return nil })
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrExists):
				t.Errorf("rename %d: %v, want nil or ErrExists", i, err)
			}
		})
		named := 0
		for _, arn := range arns {
			rec, err := st.Endpoint(ctx, arn)
			if err != nil {
				t.Fatal(err)
			}
			if rec.EndpointIdentifier == name {
				named++
			}
		}
		if won.Load() != 1 || named != 1 {
			t.Fatalf("round %d: %d renames succeeded and %d endpoints are named %s, want 1 and 1", round, won.Load(), named, name)
		}
	}
}

// TestUpdateEndpointIdentifier: a rename claims the new identifier like a
// create does and frees the old one; a refused edit changes nothing.
func TestUpdateEndpointIdentifier(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	a, _ := endpoint(t, st, "a"), endpoint(t, st, "b")

	// A rename onto a taken identifier fails and leaves the record as it was.
	if _, err := st.UpdateEndpoint(ctx, a, func(r *store.EndpointRecord) error { r.EndpointIdentifier = "b"; return nil }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename onto b: %v, want ErrExists", err)
	}
	// An error from fn leaves the record as it was.
	refused := errors.New("refused")
	if _, err := st.UpdateEndpoint(ctx, a, func(r *store.EndpointRecord) error { r.ServerName = "changed"; return refused }); !errors.Is(err, refused) {
		t.Fatalf("refused edit: %v, want fn's error", err)
	}
	if got, err := st.Endpoint(ctx, a); err != nil || got.EndpointIdentifier != "a" || got.ServerName != "" {
		t.Fatalf("after two failed updates the endpoint is %+v, %v; want it unchanged", got, err)
	}
	// A rename onto a free identifier frees the old one for a new endpoint.
	if got, err := st.UpdateEndpoint(ctx, a, func(r *store.EndpointRecord) error { r.EndpointIdentifier = "c"; return nil }); err != nil || got.EndpointIdentifier != "c" {
		t.Fatalf("rename onto c: %+v, %v", got, err)
	}
	endpoint(t, st, "a")
	rec := &store.EndpointRecord{}
	rec.EndpointArn, rec.EndpointIdentifier = "arn:ep:other", "c"
	if err := st.CreateEndpoint(ctx, rec, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create c after the rename: %v, want ErrExists", err)
	}
}

// TestEndpointReferences: an endpoint a config uses cannot be deleted; the
// references follow UpdateConfig and go with DeleteConfig.
func TestEndpointReferences(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := replication(t, st, "r")
	src, dst, other := "arn:ep:r-src", "arn:ep:r-dst", endpoint(t, st, "other")

	// The target is in use: the error names the config.
	if _, err := st.DeleteEndpoint(ctx, dst); !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), arn) {
		t.Fatalf("delete the used target: %v, want ErrInUse naming %s", err, arn)
	}
	// Moving the config to another target frees the old one and uses the new one.
	if _, _, err := st.UpdateConfig(ctx, arn, func(c *store.Config, _ *store.ReplicationRecord) error { c.TargetEndpointArn = other; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteEndpoint(ctx, other); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("delete the new target: %v, want ErrInUse", err)
	}
	if _, err := st.DeleteEndpoint(ctx, dst); err != nil {
		t.Fatalf("delete the old target: %v", err)
	}
	// A config cannot move to an endpoint that does not exist.
	if _, _, err := st.UpdateConfig(ctx, arn, func(c *store.Config, _ *store.ReplicationRecord) error { c.TargetEndpointArn = dst; return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("move onto the deleted endpoint: %v, want ErrNotFound", err)
	}
	// DeleteConfig's check refuses, and nothing is deleted.
	busy := errors.New("busy")
	if _, err := st.DeleteConfig(ctx, arn, func(*store.Config, *store.ReplicationRecord) error { return busy }); !errors.Is(err, busy) {
		t.Fatalf("refused delete: %v, want the check's error", err)
	}
	if _, err := st.Replication(ctx, arn); err != nil {
		t.Fatalf("after a refused delete: %v", err)
	}
	// A deleted config frees its endpoints and its identifier, and takes its statistics and tags along.
	if err := st.PutTableStats(ctx, arn, []store.TableStatistics{{SchemaName: "public", TableName: "t", Inserts: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddTags(ctx, arn, []store.Tag{{Key: "team", Value: "data"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteConfig(ctx, arn, func(*store.Config, *store.ReplicationRecord) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// What the replication left on its source (its slot) waits to be
	// dropped by the control loop, with the source endpoint as it was.
	drops, err := st.SourceDrops(ctx)
	if err != nil || len(drops) != 1 || drops[0].ConfigArn != arn || drops[0].ReplicationConfigIdentifier != "r" || drops[0].Source.EndpointArn != src {
		t.Fatalf("drops after the delete: %+v, %v; want the one of %s on %s", drops, err, arn, src)
	}
	if err := st.SourceDropped(ctx, drops[0]); err != nil {
		t.Fatal(err)
	}
	if drops, err := st.SourceDrops(ctx); err != nil || len(drops) != 0 {
		t.Fatalf("drops once done: %+v, %v; want none", drops, err)
	}
	for _, ep := range []string{src, other} {
		if _, err := st.DeleteEndpoint(ctx, ep); err != nil {
			t.Errorf("delete %s after its config: %v", ep, err)
		}
	}
	if _, err := st.Replication(ctx, arn); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the replication of a deleted config: %v, want ErrNotFound", err)
	}
	if stats, err := st.TableStats(ctx, arn); err != nil || stats != nil {
		t.Errorf("statistics of a deleted config: %v, %v; want none", stats, err)
	}
	if tags, err := st.Tags(ctx, arn); err != nil || len(tags) != 0 {
		t.Errorf("tags of a deleted config: %v, %v; want none", tags, err)
	}
	replication(t, st, "r") // the identifier (and the endpoints' names) are free again
}

// TestCreateConfigRacesEndpointDelete: a config created while one of its
// endpoints is deleted ends one way or the other, never with a config
// whose endpoint is gone.
func TestCreateConfigRacesEndpointDelete(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	created := 0
	for round := range 20 {
		src, dst := endpoint(t, st, fmt.Sprintf("s%d", round)), endpoint(t, st, fmt.Sprintf("d%d", round))
		cfg := &store.Config{ReplicationConfigIdentifier: fmt.Sprintf("c%d", round), ReplicationConfigArn: fmt.Sprintf("arn:cfg:%d", round), SourceEndpointArn: src, TargetEndpointArn: dst}
		var createErr, deleteErr error
		atOnce(2, func(i int) {
			if i == 0 {
				createErr = st.CreateConfig(ctx, cfg, &store.ReplicationRecord{}, nil)
			} else {
				_, deleteErr = st.DeleteEndpoint(ctx, dst)
			}
		})
		switch {
		case createErr == nil && errors.Is(deleteErr, store.ErrInUse):
			created++
			if _, err := st.Endpoint(ctx, dst); err != nil {
				t.Fatalf("round %d: the config was created but its target: %v", round, err)
			}
		case errors.Is(createErr, store.ErrNotFound) && deleteErr == nil:
			if _, err := st.Config(ctx, cfg.ReplicationConfigArn); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: the target was deleted but the config is there (%v)", round, err)
			}
		default:
			t.Fatalf("round %d: create %v, delete %v; want exactly one to win", round, createErr, deleteErr)
		}
	}
	t.Logf("%d of 20 rounds created the config", created)
}

// TestUpdateReplicationLosesNothing: twenty increments at once of one
// record's counter all count, as each reruns against the last winner's
// record.
func TestUpdateReplicationLosesNothing(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := replication(t, st, "r")
	atOnce(20, func(int) {
		if _, err := st.UpdateReplication(ctx, arn, func(r *store.ReplicationRecord) error { r.Runs++; return nil }); err != nil {
			t.Error(err)
		}
	})
	if got, err := st.Replication(ctx, arn); err != nil || got.Runs != 20 {
		t.Fatalf("after 20 increments Runs = %+v, %v; want 20", got, err)
	}
	// A missing record is not created by an update.
	if _, err := st.UpdateReplication(ctx, "arn:cfg:none", func(*store.ReplicationRecord) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update a missing replication: %v, want ErrNotFound", err)
	}
}

// TestCarryTableStats: a resumed run keeps the statistics so far as its
// base; any other start begins from nothing.
func TestCarryTableStats(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := "arn:cfg:r"
	stats := []store.TableStatistics{{SchemaName: "public", TableName: "a", Inserts: 7, FullLoadRows: 100}, {SchemaName: "public", TableName: "b", Updates: 3}}
	if err := st.PutTableStats(ctx, arn, stats); err != nil {
		t.Fatal(err)
	}
	base, err := st.CarryTableStats(ctx, arn, true)
	if err != nil || !reflect.DeepEqual(base, stats) {
		t.Fatalf("resumed: base %+v, %v; want the statistics so far", base, err)
	}
	if kept, err := st.TableStatsBase(ctx, arn); err != nil || !reflect.DeepEqual(kept, stats) {
		t.Fatalf("resumed: kept base %+v, %v; want the statistics so far", kept, err)
	}
	if base, err := st.CarryTableStats(ctx, arn, false); err != nil || base != nil {
		t.Fatalf("fresh start: base %+v, %v; want none", base, err)
	}
	for name, read := range map[string]func(context.Context, string) ([]store.TableStatistics, error){"statistics": st.TableStats, "base": st.TableStatsBase} {
		if got, err := read(ctx, arn); err != nil || got != nil {
			t.Errorf("after a fresh start the %s are %+v, %v; want none", name, got, err)
		}
	}
}

// TestTags: AddTags replaces a key's value, RemoveTags drops keys, Tags
// sorts by key.
func TestTags(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	arn := "arn:ep:x"
	for _, tags := range [][]store.Tag{{{Key: "b", Value: "1"}, {Key: "a", Value: "1"}}, {{Key: "b", Value: "2"}, {Key: "c"}}} {
		if err := st.AddTags(ctx, arn, tags); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RemoveTags(ctx, arn, []string{"c", "missing"}); err != nil {
		t.Fatal(err)
	}
	want := []store.Tag{{Key: "a", Value: "1", ResourceArn: arn}, {Key: "b", Value: "2", ResourceArn: arn}}
	if got, err := st.Tags(ctx, arn); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("tags = %+v, %v; want %+v", got, err, want)
	}
}
