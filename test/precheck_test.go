package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// TestAPIPreMigrationCheck: a start whose source user lacks what change
// capture needs ends failed at testing_connection, with one failure
// message per problem, each with its fix — before any replicator runs.
func TestAPIPreMigrationCheck(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	pg := testenv.NewPGDatabase(t, "precheck")
	testenv.Exec(t, pg, `CREATE TABLE items (id int PRIMARY KEY)`)
	testenv.Exec(t, "postgres", `DROP ROLE IF EXISTS sluice_norepl`)
	testenv.Exec(t, "postgres", `CREATE ROLE sluice_norepl LOGIN`)
	testenv.Exec(t, pg, `GRANT SELECT ON items TO sluice_norepl`)
	t.Cleanup(func() {
		testenv.Exec(t, pg, `DROP OWNED BY sluice_norepl`)
		testenv.Exec(t, "postgres", `DROP ROLE IF EXISTS sluice_norepl`)
	})
	my := testenv.NewMySQLDatabase(t, "precheck")
	testenv.MySQLExec(t, my, `CREATE TABLE items (id int PRIMARY KEY)`)
	testenv.MySQLExec(t, "", `DROP USER IF EXISTS 'sluice_nobin'@'%'`)
	testenv.MySQLExec(t, "", `CREATE USER 'sluice_nobin'@'%'`)
	t.Cleanup(func() { testenv.MySQLExec(t, "", `DROP USER IF EXISTS 'sluice_nobin'@'%'`) })
	testenv.MySQLExec(t, "", "GRANT SELECT ON "+my+".* TO 'sluice_nobin'@'%'")
	dst := testenv.NewPGDatabase(t, "precheck_dst")

	target, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("precheck-dst"), EndpointType: types.ReplicationEndpointTypeValueTarget, EngineName: aws.String("postgres"),
		ServerName: aws.String(testenv.PGHost), Port: aws.Int32(5432), DatabaseName: aws.String(dst), Username: aws.String(testenv.PGUser),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, engine, db, user, schema string
		want                           []string
	}{
		{"pg", "postgres", pg, "sluice_norepl", "public", []string{`ALTER ROLE "sluice_norepl" REPLICATION`}},
		{"my", "mariadb", "", "sluice_nobin", my, []string{"GRANT REPLICATION SLAVE", "GRANT REPLICATION CLIENT"}},
	} {
		src, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String("precheck-" + tc.name), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String(tc.engine),
			ServerName: aws.String("127.0.0.1"), DatabaseName: aws.String(tc.db), Username: aws.String(tc.user),
		})
		if err != nil {
			t.Fatalf("%s: CreateEndpoint: %v", tc.name, err)
		}
		cfg, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
			ReplicationConfigIdentifier: aws.String("precheck-" + tc.name), ReplicationType: types.MigrationTypeValueFullLoadAndCdc,
			SourceEndpointArn: src.Endpoint.EndpointArn, TargetEndpointArn: target.Endpoint.EndpointArn,
			ComputeConfig: &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
			TableMappings: aws.String(string(testenv.IncludeAll(tc.schema))),
		})
		if err != nil {
			t.Fatalf("%s: CreateReplicationConfig: %v", tc.name, err)
		}
		f := &apiFixture{configArn: *cfg.ReplicationConfig.ReplicationConfigArn}
		if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &f.configArn, StartReplicationType: aws.String("start-replication")}); err != nil {
			t.Fatalf("%s: StartReplication: %v", tc.name, err)
		}
		var r types.Replication
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			r = f.describe(t, c)
			if aws.ToString(r.Status) == "failed" {
				break
			}
			if aws.ToString(r.Status) == "running" || time.Now().After(deadline) {
				t.Fatalf("%s: status %s, want failed at the pre-migration check", tc.name, aws.ToString(r.Status))
			}
		}
		if len(r.FailureMessages) != len(tc.want) {
			t.Fatalf("%s: FailureMessages = %q, want %d messages", tc.name, r.FailureMessages, len(tc.want))
		}
		for i, w := range tc.want {
			if !strings.Contains(r.FailureMessages[i], w) {
				t.Errorf("%s: FailureMessages[%d] = %q, want it to contain %q", tc.name, i, r.FailureMessages[i], w)
			}
		}
	}
}

// TestAPIPreMigrationCheckRetentionAndTarget: a MariaDB source that keeps
// binlogs an hour, and a PostgreSQL target whose user may not create the
// control table, fail the check with a message each.
func TestAPIPreMigrationCheckRetentionAndTarget(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	my := testenv.NewMySQLDatabase(t, "retention")
	testenv.MySQLExec(t, my, `CREATE TABLE items (id int PRIMARY KEY)`)
	r := testenv.MySQLExec(t, "", `SELECT @@binlog_expire_logs_seconds`)
	was, _ := r.GetInt(0, 0)
	testenv.MySQLExec(t, "", `SET GLOBAL binlog_expire_logs_seconds = 3600`)
	t.Cleanup(func() { testenv.MySQLExec(t, "", fmt.Sprintf(`SET GLOBAL binlog_expire_logs_seconds = %d`, was)) })
	dst := testenv.NewPGDatabase(t, "precheck_ro")
	testenv.Exec(t, "postgres", `DROP ROLE IF EXISTS sluice_ro`)
	testenv.Exec(t, "postgres", `CREATE ROLE sluice_ro LOGIN`)
	t.Cleanup(func() {
		testenv.Exec(t, dst, `DROP OWNED BY sluice_ro`)
		testenv.Exec(t, "postgres", `DROP ROLE IF EXISTS sluice_ro`)
	})
	src, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("retention-src"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("mariadb"),
		ServerName: aws.String("127.0.0.1"), Username: aws.String("root"),
	})
	if err != nil {
		t.Fatal(err)
	}
	target, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
		EndpointIdentifier: aws.String("readonly-dst"), EndpointType: types.ReplicationEndpointTypeValueTarget, EngineName: aws.String("postgres"),
		ServerName: aws.String(testenv.PGHost), Port: aws.Int32(5432), DatabaseName: aws.String(dst), Username: aws.String("sluice_ro"),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String("retention-cfg"), ReplicationType: types.MigrationTypeValueFullLoadAndCdc,
		SourceEndpointArn: src.Endpoint.EndpointArn, TargetEndpointArn: target.Endpoint.EndpointArn,
		ComputeConfig: &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
		TableMappings: aws.String(string(testenv.IncludeAll(my))),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFixture{configArn: *cfg.ReplicationConfig.ReplicationConfigArn}
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &f.configArn, StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatal(err)
	}
	rep := f.waitFor(t, c, "failed", 30*time.Second, func(r types.Replication) bool {
		if aws.ToString(r.Status) == "running" {
			t.Fatal("the replication runs despite the failed check")
		}
		return aws.ToString(r.Status) == "failed"
	})
	want := []string{"keeps binlogs only 1h0m0s", "binlog_expire_logs_seconds = 86400", "does not take writes", "permission denied"}
	all := strings.Join(rep.FailureMessages, "\n")
	if len(rep.FailureMessages) != 2 {
		t.Fatalf("FailureMessages = %q, want 2 (retention, target)", rep.FailureMessages)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("FailureMessages %q lack %q", rep.FailureMessages, w)
		}
	}
}
