package test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sluicedb/sluice/capacity/control"
	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/launch"
	localprocess "github.com/sluicedb/sluice/infra/process"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
	"github.com/sluicedb/sluice/test/testenv"
)

// TestRunnerPasses runs the control loop in passes, as the schedule
// function does in a deployment without a server: between passes nothing
// watches the replicator, which runs on by itself (as an ECS task does). A
// start and a stop queued by the API are carried out by the next pass, and
// each pass takes the replicator over again and records its statistics.
func TestControlPasses(t *testing.T) {
	ctx := context.Background()
	const db = 7 // this test's Redis database: it empties it
	st := storetest.Fresh(t, db)
	url := storetest.URL(db)
	src, dst := testenv.NewPGDatabase(t, "pass_src"), testenv.NewPGDatabase(t, "pass_dst")
	testenv.Exec(t, src, `CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'i' || g FROM generate_series(1, 300) g`)
	for _, e := range []struct{ arn, id, db string }{{"arn:aws:dms:us-east-1:000000000000:endpoint:PASSSRC", "pass-src", src}, {"arn:aws:dms:us-east-1:000000000000:endpoint:PASSDST", "pass-dst", dst}} {
		rec := &store.EndpointRecord{}
		rec.EndpointArn, rec.EndpointIdentifier, rec.EngineName = e.arn, e.id, "postgres"
		rec.ServerName, rec.Port, rec.DatabaseName, rec.Username = testenv.PGHost, 5432, e.db, testenv.PGUser
		rec.Created = *store.At(time.Now())
		if err := st.CreateEndpoint(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	arn := "arn:aws:dms:us-east-1:000000000000:replication-config:PASS"
	cfg := &store.Config{ReplicationConfigIdentifier: "pass", ReplicationConfigArn: arn, ReplicationType: "full-load-and-cdc",
		SourceEndpointArn: "arn:aws:dms:us-east-1:000000000000:endpoint:PASSSRC", TargetEndpointArn: "arn:aws:dms:us-east-1:000000000000:endpoint:PASSDST",
		TableMappings: string(testenv.IncludeAll("public"))}
	rep := &store.ReplicationRecord{}
	rep.ReplicationConfigArn, rep.ReplicationConfigIdentifier, rep.ReplicationType, rep.Status = arn, "pass", "full-load-and-cdc", store.StatusCreated
	if err := st.CreateConfig(ctx, cfg, rep, nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The API as the function runs it: starts and stops are queued.
	contract, err := config.Read(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a := api.Internal(contract, st, api.Queue{Store: st}, log)
	if _, err := a.StartReplication(ctx, arn, ""); err != nil {
		t.Fatal(err)
	}
	reports := make(chan launch.Report, 64)
	launcher, err := localprocess.New(replicatorBin, t.TempDir(), reports, log)
	if err != nil {
		t.Fatal(err)
	}
	launcher.Env = []string{"SLUICE_REDIS_URL=" + url, "SLUICE_LEASE_TTL=3s"}
	defer launcher.Shutdown(ctx)
	run := control.New(control.Config{Store: st, Launcher: launcher, Reports: reports, Log: log, LeaseTTL: 3 * time.Second})
	status := func() *store.ReplicationRecord {
		t.Helper()
		r, err := st.Replication(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pass := func(window time.Duration) {
		t.Helper()
		if err := run.Pass(ctx, window); err != nil {
			t.Fatalf("pass: %v", err)
		}
	}
	pass(10 * time.Second)
	if r := status(); r.Status != store.StatusRunning || r.ReplicationStats == nil || r.ReplicationStats.FullLoadProgressPercent != 100 {
		t.Fatalf("after the first pass: status %s, stats %+v; want running with the load done", r.Status, r.ReplicationStats)
	}
	testenv.Exec(t, src, `INSERT INTO items (name) SELECT 'late' || g FROM generate_series(1, 50) g; UPDATE items SET name = 'x' WHERE id < 20`)
	testenv.WaitEqual(t, nil, src, dst, 30*time.Second, "items")
	pass(3 * time.Second)
	stats, err := st.TableStats(ctx, arn)
	if err != nil || len(stats) != 1 || stats[0].Inserts != 50 || stats[0].Updates != 19 {
		t.Fatalf("table statistics after a second pass: %+v (%v); want 50 inserts and 19 updates", stats, err)
	}
	if _, err := a.StopReplication(ctx, arn); err != nil {
		t.Fatal(err)
	}
	pass(5 * time.Second)
	if r := status(); r.Status != store.StatusStopped || r.StopReason != lifecycle.StopNormal {
		t.Fatalf("after the stop's pass: status %s (%s), want stopped normally", r.Status, r.StopReason)
	}
}
