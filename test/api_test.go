package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/smithy-go"

	"github.com/sluicedb/sluice/infra/store/storetest"
	"github.com/sluicedb/sluice/test/testenv"
)

const (
	testKeyID  = "AKIDSLUICETEST"
	testSecret = "sluice-test-secret"
	// testRedisDB is the Redis database the API tests own: they empty it.
	testRedisDB = 9
)

// server is a running `sluice serve`.
type server struct {
	url string
	log string
	env []string // what it was started with, for a restart
	cmd *exec.Cmd
	// exited is closed when the process has ended.
	exited chan struct{}
}

// startServer runs `sluice serve` on a free port against an emptied Redis
// database, and stops it (gracefully) when the test ends. env adds to or
// overrides its environment.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	storetest.Empty(t, testRedisDB)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	dir := t.TempDir()
	return launchServer(t, append([]string{
		"SLUICE_REDIS_URL=" + storetest.URL(testRedisDB),
		"SLUICE_ACCESS_KEY_ID=" + testKeyID, "SLUICE_SECRET_ACCESS_KEY=" + testSecret,
		"SLUICE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key),
		"SLUICE_REPLICATOR_BIN=" + replicatorBin, "SLUICE_STATE_DIR=" + dir,
		// Stopped replications keep their capacity this long (48 h by
		// default), so the tests see the timer fire.
		"SLUICE_DEPROVISION_AFTER=3s",
		"SLUICE_LEASE_TTL=3s",
	}, env...), filepath.Join(dir, "serve.log"))
}

// restart starts another server with the same state, keys and log, on a
// new port; s must have ended.
func (s *server) restart(t *testing.T) *server {
	t.Helper()
	<-s.exited
	return launchServer(t, s.env, s.log)
}

// launchServer runs `sluice serve` with env on a free port, appending to
// logPath, and stops it gracefully when the test ends.
func launchServer(t *testing.T, env []string, logPath string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &server{url: "http://" + addr, log: logPath, env: env, exited: make(chan struct{})}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(sluiceBin, "serve")
	s.cmd.Env = append(append(os.Environ(), env...), "SLUICE_ADDR="+addr)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(40 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("sluice serve log:\n%s", b)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("sluice serve exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sluice serve did not listen within 20 s")
		}
	}
}

// client returns an official DMS client pointed at the server, signing with
// the given secret.
func (s *server) client(secret string) *dms.Client {
	return dms.New(dms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.url),
		Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

// faultCode returns the DMS fault name of an API error.
func faultCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func requireFault(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s, got success", code)
	}
	if got := faultCode(err); got != code {
		t.Fatalf("expected %s, got %q: %v", code, got, err)
	}
}

// apiFixture creates two endpoints and a config over fresh databases.
type apiFixture struct {
	src, dst            string
	srcArn, dstArn      string
	configArn, configID string
}

func newFixture(t *testing.T, c *dms.Client, label, typ string) *apiFixture {
	t.Helper()
	ctx := context.Background()
	f := &apiFixture{src: testenv.NewPGDatabase(t, label+"_src"), dst: testenv.NewPGDatabase(t, label+"_dst")}
	ep := func(id, db string, typ types.ReplicationEndpointTypeValue) string {
		out, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String(id), EndpointType: typ, EngineName: aws.String("postgres"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(5432), DatabaseName: aws.String(db),
			Username: aws.String("postgres"), Password: aws.String("not-needed-with-trust-auth"),
		})
		if err != nil {
			t.Fatalf("CreateEndpoint %s: %v", id, err)
		}
		return *out.Endpoint.EndpointArn
	}
	f.srcArn = ep(label+"-src", f.src, types.ReplicationEndpointTypeValueSource)
	f.dstArn = ep(label+"-dst", f.dst, types.ReplicationEndpointTypeValueTarget)
	f.configID = label + "-cfg"
	out, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String(f.configID),
		SourceEndpointArn:           aws.String(f.srcArn), TargetEndpointArn: aws.String(f.dstArn),
		ReplicationType: types.MigrationTypeValue(typ),
		ComputeConfig:   &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2), MinCapacityUnits: aws.Int32(1)},
		TableMappings:   aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`),
	})
	if err != nil {
		t.Fatalf("CreateReplicationConfig: %v", err)
	}
	f.configArn = *out.ReplicationConfig.ReplicationConfigArn
	return f
}

// describe returns the fixture's replication.
func (f *apiFixture) describe(t *testing.T, c *dms.Client) types.Replication {
	t.Helper()
	out, err := c.DescribeReplications(context.Background(), &dms.DescribeReplicationsInput{
		Filters: []types.Filter{{Name: aws.String("replication-config-arn"), Values: []string{f.configArn}}},
	})
	if err != nil {
		t.Fatalf("DescribeReplications: %v", err)
	}
	if len(out.Replications) != 1 {
		t.Fatalf("DescribeReplications returned %d replications, want 1", len(out.Replications))
	}
	return out.Replications[0]
}

// waitFor polls the replication until ok says so, failing on a failed
// status (unless that is what ok waits for) or after timeout.
func (f *apiFixture) waitFor(t *testing.T, c *dms.Client, what string, timeout time.Duration, ok func(types.Replication) bool) types.Replication {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := f.describe(t, c)
		if ok(r) {
			return r
		}
		if aws.ToString(r.Status) == "failed" {
			t.Fatalf("replication failed while waiting for %s: %v", what, r.FailureMessages)
		}
		if time.Now().After(deadline) {
			t.Fatalf("replication did not reach %s within %s; status %s", what, timeout, aws.ToString(r.Status))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// apiTableStats returns the statistics of one table, or none while the
// replication has none for it (DMS answers a filter that matches no table
// with ResourceNotFoundFault).
func apiTableStats(t *testing.T, c *dms.Client, arn, table string) types.TableStatistics {
	t.Helper()
	out, err := c.DescribeReplicationTableStatistics(context.Background(), &dms.DescribeReplicationTableStatisticsInput{
		ReplicationConfigArn: aws.String(arn),
		Filters:              []types.Filter{{Name: aws.String("table-name"), Values: []string{table}}},
	})
	if faultCode(err) == "ResourceNotFoundFault" && strings.Contains(err.Error(), "found matching provided filters") {
		return types.TableStatistics{}
	}
	if err != nil {
		t.Fatalf("DescribeReplicationTableStatistics: %v", err)
	}
	if len(out.ReplicationTableStatistics) != 1 {
		return types.TableStatistics{}
	}
	return out.ReplicationTableStatistics[0]
}

// TestAPIReplicationLifecycle drives one replication through the API as a
// user would: create, start, watch the load and the changes, stop, write
// more, resume, and find the target equal to the source.
func TestAPIReplicationLifecycle(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apilife", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL, qty int)`)
	testenv.Exec(t, f.src, `INSERT INTO orders (item, qty) SELECT 'item ' || g, g FROM generate_series(1, 5000) g`)

	_, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")})
	if err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	r := f.waitFor(t, c, "running with the full load done", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "running" && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	})
	if r.ProvisionData == nil || aws.ToString(r.ProvisionData.ProvisionState) != "provisioned" || r.ProvisionData.ProvisionedCapacityUnits != 1 {
		t.Fatalf("ProvisionData = %+v, want provisioned with 1 unit", r.ProvisionData)
	}
	// The planner sized it from the source and says so.
	if why := aws.ToString(r.ProvisionData.ReasonForNewProvisioningData); !regexp.MustCompile(`^Provisioned 1 capacity unit\(s\): [0-9.]+ KiB in 1 table\(s\) needs 1 for the full load; [0-9.]+ (B|KiB|MiB)/s of changes needs 1\.$`).MatchString(why) {
		t.Fatalf("ReasonForNewProvisioningData = %q, want the planner's reasons", why)
	}
	if ts := apiTableStats(t, c, f.configArn, "orders"); ts.FullLoadRows != 5000 || aws.ToString(ts.TableState) != "Table completed" {
		t.Fatalf("orders statistics after the load: rows %d, state %s", ts.FullLoadRows, aws.ToString(ts.TableState))
	}

	testenv.Exec(t, f.src, `INSERT INTO orders (item, qty) SELECT 'new ' || g, g FROM generate_series(1, 300) g`)
	testenv.Exec(t, f.src, `UPDATE orders SET qty = qty + 1 WHERE id <= 200`)
	testenv.Exec(t, f.src, `DELETE FROM orders WHERE id > 4900 AND id <= 5000`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(300 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "orders")
		if ts.Inserts == 300 && ts.Updates == 200 && ts.Deletes == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table statistics did not count the changes: inserts %d updates %d deletes %d", ts.Inserts, ts.Updates, ts.Deletes)
		}
	}
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "orders")

	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	r = f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if aws.ToString(r.StopReason) != "Stop Reason NORMAL" {
		t.Fatalf("StopReason = %q", aws.ToString(r.StopReason))
	}
	if !strings.HasPrefix(aws.ToString(r.RecoveryCheckpoint), "checkpoint:") {
		t.Fatalf("RecoveryCheckpoint = %q, want a checkpoint: string", aws.ToString(r.RecoveryCheckpoint))
	}
	if r.ReplicationLastStopTime == nil || r.ReplicationStats == nil || r.ReplicationStats.StopDate == nil {
		t.Fatalf("stop times missing: %+v", r)
	}

	// Changes made while stopped arrive after resume-processing.
	testenv.Exec(t, f.src, `INSERT INTO orders (item, qty) SELECT 'while stopped ' || g, g FROM generate_series(1, 100) g`)
	testenv.Exec(t, f.src, `UPDATE orders SET item = item || '!' WHERE id % 7 = 0`)
	_, err = c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")})
	requireFault(t, err, "InvalidResourceStateFault") // only the first run may use start-replication
	_, err = c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("resume-processing")})
	if err != nil {
		t.Fatalf("StartReplication resume-processing: %v", err)
	}
	f.waitFor(t, c, "running again", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "running" })
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "orders")
	// The resumed run counts on from the first: the load stays counted and
	// the changes add up.
	var sevens int64
	if err := testenv.Connect(t, f.src).QueryRow(ctx, `SELECT count(*) FROM orders WHERE id % 7 = 0`).Scan(&sevens); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		ts := apiTableStats(t, c, f.configArn, "orders")
		if ts.FullLoadRows == 5000 && ts.Inserts == 400 && ts.Updates == 200+sevens && ts.Deletes == 100 && ts.FullLoadStartTime != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statistics after resume: full load %d inserts %d updates %d deletes %d, want 5000, 400, %d, 100 with the load's start time",
				ts.FullLoadRows, ts.Inserts, ts.Updates, ts.Deletes, 200+sevens)
		}
	}

	// A running replication's config cannot change or go.
	_, err = c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn), ReplicationType: types.MigrationTypeValueCdc})
	requireFault(t, err, "InvalidResourceStateFault")
	_, err = c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn)})
	requireFault(t, err, "InvalidResourceStateFault")
	_, err = c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String(f.srcArn)})
	requireFault(t, err, "InvalidResourceStateFault") // still used by the config

	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	r = f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	// The capacity stays until the deprovision timer fires, and the config
	// cannot be deleted before.
	if r.ProvisionData == nil || aws.ToString(r.ProvisionData.ProvisionState) != "provisioned" || r.ReplicationDeprovisionTime == nil ||
		r.ReplicationDeprovisionTime.Sub(*r.ReplicationLastStopTime) != 3*time.Second {
		t.Fatalf("after the stop: ProvisionData %+v, deprovision time %v, stop time %v; want provisioned until 3 s after the stop", r.ProvisionData, r.ReplicationDeprovisionTime, r.ReplicationLastStopTime)
	}
	_, err = c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn)})
	requireFault(t, err, "InvalidResourceStateFault")
	r = f.waitFor(t, c, "deprovisioned", 30*time.Second, func(r types.Replication) bool {
		return r.ProvisionData != nil && aws.ToString(r.ProvisionData.ProvisionState) == "deprovisioned"
	})
	if r.ProvisionData.ProvisionedCapacityUnits != 0 || time.Now().Before(*r.ReplicationDeprovisionTime) {
		t.Fatalf("deprovisioned with %d units before its time %v", r.ProvisionData.ProvisionedCapacityUnits, r.ReplicationDeprovisionTime)
	}
	if _, err := c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("DeleteReplicationConfig after deprovisioning: %v", err)
	}
	for _, arn := range []string{f.srcArn, f.dstArn} {
		if _, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String(arn)}); err != nil {
			t.Fatalf("DeleteEndpoint: %v", err)
		}
	}
	testenv.Exec(t, f.src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`)
}

// TestAPIConcurrentStart: of 50 simultaneous StartReplication calls on one
// config exactly one wins; the others are told the state it is in.
func TestAPIConcurrentStart(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	f := newFixture(t, c, "apirace", "full-load")
	testenv.Exec(t, f.src, `CREATE TABLE t (id int PRIMARY KEY)`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, faults := 0, map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.StartReplication(context.Background(), &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				faults[faultCode(err)]++
			}
		}()
	}
	wg.Wait()
	if wins != 1 || faults["InvalidResourceStateFault"] != 49 {
		t.Fatalf("50 concurrent starts: %d succeeded, faults %v; want 1 and 49 InvalidResourceStateFault", wins, faults)
	}
	r := f.waitFor(t, c, "the full load to finish", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if aws.ToString(r.StopReason) != "Stop Reason FULL_LOAD_ONLY_FINISHED" {
		t.Fatalf("StopReason = %q", aws.ToString(r.StopReason))
	}
}

// TestAPIAuth: requests that are unsigned, signed with the wrong secret or
// too old are refused with 403, and nothing happens.
func TestAPIAuth(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	_, err := s.client("wrong-secret").DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
	requireFault(t, err, "AccessDeniedFault")

	req, _ := http.NewRequest(http.MethodPost, s.url+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonDMSv20160101.DescribeEndpoints")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned request: status %d, want 403", resp.StatusCode)
	}

	// A client whose clock is 20 minutes off.
	if status, body := signedPostAt(t, s.url, "DescribeEndpoints", `{}`, time.Now().Add(-20*time.Minute)); status != http.StatusForbidden || !strings.Contains(body, "AccessDeniedFault") {
		t.Fatalf("request signed 20 minutes ago: status %d body %s", status, body)
	}

	if _, err := s.client(testSecret).DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{}); err != nil {
		t.Fatalf("a correctly signed request failed: %v", err)
	}
}

// TestAPIBadInput: malformed and invalid requests get a 4xx with the DMS
// fault and a message that says what is wrong, and change nothing.
func TestAPIBadInput(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apibad", "full-load-and-cdc")
	mappings := func(m string) *dms.CreateReplicationConfigInput {
		return &dms.CreateReplicationConfigInput{
			ReplicationConfigIdentifier: aws.String("bad-mapping"), SourceEndpointArn: aws.String(f.srcArn), TargetEndpointArn: aws.String(f.dstArn),
			ReplicationType: types.MigrationTypeValueFullLoad, ComputeConfig: &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
			TableMappings: aws.String(m),
		}
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"identifier with odd characters", func() error {
			_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("bad id; drop"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres")})
			return err
		}, "InvalidParameterValueException"},
		{"duplicate endpoint identifier", func() error {
			_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("apibad-src"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres"), ServerName: aws.String("h"), DatabaseName: aws.String("d"), Username: aws.String("u")})
			return err
		}, "ResourceAlreadyExistsFault"},
		{"unsupported engine", func() error {
			_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("ora"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("oracle")})
			return err
		}, "InvalidParameterValueException"},
		{"HeartbeatSchema, which Sluice's heartbeat has no use for", func() error {
			_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("hbschema"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres"), ServerName: aws.String("h"), DatabaseName: aws.String("d"), Username: aws.String("u"),
				PostgreSQLSettings: &types.PostgreSQLSettings{HeartbeatEnable: aws.Bool(true), HeartbeatSchema: aws.String("public")}})
			return err
		}, "InvalidParameterValueException"},
		{"ExecuteTimeout on a source endpoint", func() error {
			_, err := c.ModifyEndpoint(ctx, &dms.ModifyEndpointInput{EndpointArn: aws.String(f.srcArn),
				PostgreSQLSettings: &types.PostgreSQLSettings{ExecuteTimeout: aws.Int32(30)}})
			return err
		}, "InvalidParameterValueException"},
		{"negative HeartbeatFrequency", func() error {
			_, err := c.ModifyEndpoint(ctx, &dms.ModifyEndpointInput{EndpointArn: aws.String(f.srcArn),
				PostgreSQLSettings: &types.PostgreSQLSettings{HeartbeatEnable: aws.Bool(true), HeartbeatFrequency: aws.Int32(-5)}})
			return err
		}, "InvalidParameterValueException"},
		{"invalid ARN", func() error {
			_, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String("not-an-arn")})
			return err
		}, "InvalidParameterValueException"},
		{"unknown endpoint", func() error {
			_, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String("arn:aws:dms:us-east-1:000000000000:endpoint:NOSUCHTHING")})
			return err
		}, "ResourceNotFoundFault"},
		{"malformed table mappings", func() error { _, err := c.CreateReplicationConfig(ctx, mappings(`{"rules": [`)); return err }, "InvalidParameterValueException"},
		{"mappings without a selection rule", func() error { _, err := c.CreateReplicationConfig(ctx, mappings(`{"rules": []}`)); return err }, "InvalidParameterValueException"},
		{"invalid capacity", func() error {
			in := mappings(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`)
			in.ComputeConfig.MaxCapacityUnits = aws.Int32(3)
			_, err := c.CreateReplicationConfig(ctx, in)
			return err
		}, "InvalidParameterValueException"},
		{"invalid settings JSON", func() error {
			_, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn), ReplicationSettings: aws.String(`{"FullLoadSettings": {"TargetTablePrepMode": "EXPLODE"}}`)})
			return err
		}, "InvalidParameterValueException"},
		{"CdcStartTime with CdcStartPosition", func() error {
			_, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication"), CdcStartTime: aws.Time(time.Now()), CdcStartPosition: aws.String("0/16B3748")})
			return err
		}, "InvalidParameterCombinationException"},
		{"resume before any run", func() error {
			_, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("resume-processing")})
			return err
		}, "InvalidResourceStateFault"},
		{"stop what does not run", func() error {
			_, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)})
			return err
		}, "InvalidResourceStateFault"},
		{"MaxRecords out of range", func() error {
			_, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{MaxRecords: aws.Int32(5)})
			return err
		}, "InvalidParameterValueException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			requireFault(t, err, tc.code)
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorMessage() == "" {
				t.Fatalf("%s came without a message", tc.code)
			}
		})
	}
	// Nothing above left a trace: still the two endpoints and one config,
	// and the replication was never started.
	eps, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
	if err != nil || len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints after the bad requests: %v, %v", eps, err)
	}
	if r := f.describe(t, c); aws.ToString(r.Status) != "created" {
		t.Fatalf("status after the bad requests: %s", aws.ToString(r.Status))
	}
	// Passwords never come back.
	for _, e := range eps.Endpoints {
		if e.Username == nil {
			t.Fatal("endpoint lost its user name")
		}
	}
	if b, _ := os.ReadFile(s.log); bytes.Contains(b, []byte("not-needed-with-trust-auth")) {
		t.Fatal("the server log holds an endpoint password")
	}

	// Raw requests the SDK would never send.
	raw := []struct {
		name, target, body string
		status             int
	}{
		{"malformed JSON", "DescribeEndpoints", `{"Filters": [`, 400},
		{"wrong member type", "DescribeEndpoints", `{"MaxRecords": "many"}`, 400},
		{"unknown operation", "LaunchRockets", `{}`, 400},
		{"oversized body", "DescribeEndpoints", `{"Marker": "` + strings.Repeat("x", 5<<20) + `"}`, 413},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			status, body := signedPost(t, s.url, tc.target, tc.body)
			if status != tc.status || !strings.Contains(body, `"__type"`) || !strings.Contains(body, `"message"`) {
				t.Fatalf("status %d body %s; want %d with __type and message", status, clip(body), tc.status)
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

func signedPost(t *testing.T, url, op, body string) (int, string) {
	return signedPostAt(t, url, op, body, time.Now())
}

// signedPostAt sends a raw JSON 1.1 request signed by the SDK's signer as
// of at.
func signedPostAt(t *testing.T, url, op, body string, at time.Time) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonDMSv20160101."+op)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "dms", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
