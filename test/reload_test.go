package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// TestAPIReloadTables: ReloadReplicationTables loads one table again while
// the source keeps writing to it and to the others, and the replication
// goes on: a target table that was damaged ends equal to the source, and
// the other tables miss nothing.
func TestAPIReloadTables(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "reload", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL, note text)`)
	testenv.Exec(t, f.src, `INSERT INTO accounts SELECT g, g * 10, 'opened' FROM generate_series(1, 20000) g`)
	testenv.Exec(t, f.src, `CREATE TABLE notes (id serial PRIMARY KEY, body text)`)

	reload := func(tables ...string) error {
		var in []types.TableToReload
		for _, name := range tables {
			in = append(in, types.TableToReload{SchemaName: aws.String("public"), TableName: aws.String(name)})
		}
		_, err := c.ReloadReplicationTables(ctx, &dms.ReloadReplicationTablesInput{ReplicationConfigArn: aws.String(f.configArn), TablesToReload: in})
		return err
	}
	requireFault(t, reload("accounts"), "InvalidResourceStateFault") // not running yet

	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "running with the load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "accounts", "notes")

	requireFault(t, reload("no_such_table"), "InvalidParameterValueException")

	// The target's copy of accounts is damaged behind Sluice's back.
	testenv.Exec(t, f.dst, `DELETE FROM accounts WHERE id % 3 = 0`)
	testenv.Exec(t, f.dst, `UPDATE accounts SET balance = -1 WHERE id % 5 = 0`)

	// Writers keep changing both tables, one transaction at a time, before,
	// during and after the reload.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var notes atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := testenv.Connect(t, f.src)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := (i*7919+w*104729)%20000 + 1
				sqls := []string{
					fmt.Sprintf(`UPDATE accounts SET balance = balance + 1, note = 'w%d %d' WHERE id = %d`, w, i, id),
					`INSERT INTO notes (body) VALUES ('note')`,
				}
				if i%10 == 0 {
					sqls = append(sqls, fmt.Sprintf(`INSERT INTO accounts VALUES (%d, 0, 'new') ON CONFLICT (id) DO NOTHING`, 100000+w*100000+i))
				}
				if i%13 == 0 {
					sqls = append(sqls, fmt.Sprintf(`DELETE FROM accounts WHERE id = %d`, (id+5000)%20000+1))
				}
				for _, q := range sqls {
					if _, err := conn.Exec(context.Background(), q); err != nil {
						t.Errorf("writer: %s: %v", q, err)
						return
					}
				}
				notes.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	requested := time.Now()
	if err := reload("accounts", "accounts"); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("ReloadReplicationTables: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "accounts")
		if ts.FullLoadStartTime != nil && ts.FullLoadStartTime.After(requested) && aws.ToString(ts.TableState) == "Table completed" {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("accounts was not reloaded within a minute: state %s, load started %v", aws.ToString(ts.TableState), ts.FullLoadStartTime)
		}
	}
	time.Sleep(2 * time.Second) // writes after the reload, too
	close(stop)
	wg.Wait()

	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "accounts", "notes")
	r := f.describe(t, c)
	if aws.ToString(r.Status) != "running" {
		t.Fatalf("status after the reload = %s, want running", aws.ToString(r.Status))
	}
	// Every note insert is counted once across the restart the reload makes.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "notes")
		if ts.Inserts == notes.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notes inserts counted %d, want %d", ts.Inserts, notes.Load())
		}
	}
	var rows int64
	if err := testenv.Connect(t, f.src).QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if ts := apiTableStats(t, c, f.configArn, "accounts"); ts.FullLoadRows < 19000 || ts.FullLoadRows > rows+1000 {
		t.Errorf("accounts full-load rows after the reload = %d, want about %d", ts.FullLoadRows, rows)
	}

	// The reload is done once: a stop and resume does not repeat it.
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	before := apiTableStats(t, c, f.configArn, "accounts").FullLoadStartTime
	requireFault(t, reload("accounts"), "InvalidResourceStateFault")
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("resume-processing")}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	f.waitFor(t, c, "running again", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "running" })
	time.Sleep(1500 * time.Millisecond)
	if after := apiTableStats(t, c, f.configArn, "accounts").FullLoadStartTime; after == nil || before == nil || !after.Equal(*before) {
		t.Fatalf("accounts was loaded again on resume: load started %v, before %v", after, before)
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "accounts", "notes")
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	testenv.Exec(t, f.src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`)
}
