package test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/test/testenv"
)

// TestAutoscale drives a replication's workload up and down and watches
// its capacity follow, within its ComputeConfig (1 to 2 units): a unit
// stands for 0.02 cores here, so the replicator's own CPU under a steady
// writer is a high load and its idle heartbeat a low one, and the waits
// are seconds instead of minutes. Each resize relaunches the replicator
// from its checkpoint; the replication stays running and loses nothing.
func TestAutoscale(t *testing.T) {
	s := startServer(t, "SLUICE_UNIT_CPU=0.02", "SLUICE_SCALE_UP_AFTER=3s", "SLUICE_SCALE_DOWN_AFTER=5s")
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "scale", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id serial PRIMARY KEY, name text, n int NOT NULL DEFAULT 0)`)
	testenv.Exec(t, f.src, `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 1000) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	units := func(r types.Replication) int32 {
		if r.ProvisionData == nil {
			return 0
		}
		return r.ProvisionData.ProvisionedCapacityUnits
	}
	r := f.waitFor(t, c, "running with the load done", time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	if units(r) != 1 {
		t.Fatalf("a 1000-row source got %d units, want 1", units(r))
	}

	stopWriter := testenv.StartWriter(t, f.src, func(ctx context.Context, conn *pgx.Conn, i int) error {
		if _, err := conn.Exec(ctx, `INSERT INTO items (name) VALUES ($1)`, "w"+strconv.Itoa(i)); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, `UPDATE items SET n = n + 1 WHERE id = $1`, 1+i%1000)
		return err
	})
	busySince := time.Now()
	r = f.waitFor(t, c, "2 units under load", time.Minute, func(r types.Replication) bool {
		return units(r) == 2 && !r.ProvisionData.IsNewProvisioningAvailable
	})
	reason := aws.ToString(r.ProvisionData.ReasonForNewProvisioningData)
	t.Logf("scaled up %.1f s into the load: %s", time.Since(busySince).Seconds(), reason)
	if !strings.Contains(reason, "Scaled up from 1 to 2") {
		t.Fatalf("reason %q does not say it scaled up", reason)
	}
	time.Sleep(2 * time.Second) // changes flow through the new replicator
	stopWriter()
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")

	idleSince := time.Now()
	r = f.waitFor(t, c, "1 unit when idle", time.Minute, func(r types.Replication) bool {
		return units(r) == 1 && !r.ProvisionData.IsNewProvisioningAvailable
	})
	reason = aws.ToString(r.ProvisionData.ReasonForNewProvisioningData)
	t.Logf("scaled down %.1f s after the load stopped: %s", time.Since(idleSince).Seconds(), reason)
	if !strings.Contains(reason, "Scaled down from 2 to 1") {
		t.Fatalf("reason %q does not say it scaled down", reason)
	}
	testenv.Exec(t, f.src, `INSERT INTO items (name) VALUES ('after scaling down')`)
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	if st := aws.ToString(f.describe(t, c).Status); st != "running" {
		t.Fatalf("status %s, want running", st)
	}
}
