package test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// TestStartSizesByWorkload: a start walks every status to running, and
// the capacity it provisions follows the source's workload: an idle source
// gets one unit, one that writes several MiB of WAL a second while it is
// analyzed gets more, each with a reason that says so.
func TestStartSizesByWorkload(t *testing.T) {
	s := startServer(t, "SLUICE_AUTOSCALE=off")
	c := s.client(testSecret)
	ctx := context.Background()
	start := func(f *apiFixture) types.Replication {
		t.Helper()
		if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
			t.Fatalf("StartReplication: %v", err)
		}
		// Every status on the way, in order.
		want := []string{"initializing", "preparing_metadata_resources", "testing_connection", "fetching_metadata", "calculating_capacity", "provisioning_capacity", "replication_starting", "running"}
		var seen []string
		r := f.waitFor(t, c, "running", time.Minute, func(r types.Replication) bool {
			st := aws.ToString(r.Status)
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
			}
			return st == "running"
		})
		at := 0
		for _, st := range seen {
			for at < len(want) && want[at] != st {
				at++
			}
			if at == len(want) {
				t.Fatalf("statuses %v are not in the lifecycle's order %v", seen, want)
			}
		}
		return r
	}

	idle := newFixture(t, c, "sizeidle", "full-load-and-cdc")
	testenv.Exec(t, idle.src, `CREATE TABLE items (id int PRIMARY KEY, body text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g`)
	r := start(idle)
	if u := r.ProvisionData.ProvisionedCapacityUnits; u != 1 {
		t.Fatalf("an idle source got %d units (%s), want 1", u, aws.ToString(r.ProvisionData.ReasonForNewProvisioningData))
	}

	busy := newFixture(t, c, "sizebusy", "full-load-and-cdc")
	testenv.Exec(t, busy.src, `CREATE TABLE items (id serial PRIMARY KEY, body text)`)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := testenv.Connect(t, busy.src)
			for {
				select {
				case <-stop:
					return
				default:
				}
				// About 2 MiB of WAL per statement.
				if _, err := conn.Exec(ctx, `INSERT INTO items (body) SELECT md5(g::text) || repeat('y', 1000) FROM generate_series(1, 1000) g`); err != nil {
					t.Errorf("insert: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Second)
	r = start(busy)
	close(stop)
	wg.Wait()
	reason := aws.ToString(r.ProvisionData.ReasonForNewProvisioningData)
	t.Logf("busy source: %d units: %s", r.ProvisionData.ProvisionedCapacityUnits, reason)
	if u := r.ProvisionData.ProvisionedCapacityUnits; u < 2 || !strings.Contains(reason, "of changes needs") {
		t.Fatalf("a source writing MiB of WAL a second got %d units (%s), want 2 (its ComputeConfig's maximum) for its changes", u, reason)
	}
}
