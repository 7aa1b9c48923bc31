package test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/store/storetest"
	"github.com/sluicedb/sluice/test/testenv"
)

// lambdaFixture empties the Lambda tests' Redis database and creates, with
// the API function, two endpoints over fresh databases and a config.
func lambdaFixture(t *testing.T, label string) (env map[string]string, src, configArn string, rdb *redis.Client) {
	t.Helper()
	storetest.Empty(t, lambdaRedisDB)
	rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: lambdaRedisDB})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	env = lambdaEnv()
	c := (&gateway{fn: startLambda(t, buildLambda(t), env)}).client(testSecret)
	src, dst := testenv.NewPGDatabase(t, label+"_src"), testenv.NewPGDatabase(t, label+"_dst")
	arns := map[string]string{}
	for _, e := range []struct {
		id, db string
		typ    types.ReplicationEndpointTypeValue
	}{{label + "-src", src, types.ReplicationEndpointTypeValueSource}, {label + "-dst", dst, types.ReplicationEndpointTypeValueTarget}} {
		out, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String(e.id), EndpointType: e.typ, EngineName: aws.String("postgres"),
			ServerName: aws.String("127.0.0.1"), Port: aws.Int32(5432), DatabaseName: aws.String(e.db),
			Username: aws.String("postgres"), Password: aws.String("trust-auth-needs-none"),
		})
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		arns[e.id] = aws.ToString(out.Endpoint.EndpointArn)
	}
	out, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
		ReplicationConfigIdentifier: aws.String(label + "-cfg"),
		SourceEndpointArn:           aws.String(arns[label+"-src"]), TargetEndpointArn: aws.String(arns[label+"-dst"]),
		ReplicationType: types.MigrationTypeValueFullLoadAndCdc,
		ComputeConfig:   &types.ComputeConfig{MinCapacityUnits: aws.Int32(1), MaxCapacityUnits: aws.Int32(4)},
		TableMappings:   aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`),
	})
	if err != nil {
		t.Fatalf("CreateReplicationConfig: %v", err)
	}
	return env, src, aws.ToString(out.ReplicationConfig.ReplicationConfigArn), rdb
}

// invokeJSON invokes fn with payload and decodes its answer into out, or
// returns the error message it posted to /error.
func invokeJSON(t *testing.T, fn *lambdaFunction, payload string, out any) string {
	t.Helper()
	res, err := fn.invoke(context.Background(), []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if res.failed {
		var e runtimeError
		_ = json.Unmarshal(res.payload, &e)
		return e.ErrorMessage
	}
	if err := json.Unmarshal(res.payload, out); err != nil {
		t.Fatalf("answer %s: %v", res.payload, err)
	}
	return ""
}

// TestLambdaSchedule runs cmd/lambda-schedule as Lambda does and hands it
// EventBridge Scheduler payloads.
func TestLambdaSchedule(t *testing.T) {
	env, _, arn, rdb := lambdaFixture(t, "lsched")
	env["SLUICE_DEPROVISION_AFTER"] = "1h"
	fn := startLambda(t, buildFunction(t, "schedule"), env)
	ctx := context.Background()
	status := func() string {
		t.Helper()
		var rep struct{ Status string }
		b, err := rdb.Get(ctx, "{sluice}:rep:"+arn).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(b, &rep)
		return rep.Status
	}
	type result struct {
		Action, ReplicationConfigArn, Status, Skipped string
	}
	var r result
	if msg := invokeJSON(t, fn, `{"action":"start","replicationConfigArn":"`+arn+`"}`, &r); msg != "" {
		t.Fatalf("start: %s", msg)
	}
	if r.Status != "initializing" || status() != "initializing" {
		t.Fatalf("after a scheduled start: answer %+v, record %s; want initializing", r, status())
	}
	if q, _ := rdb.ZRange(ctx, "{sluice}:queue:starts", 0, -1).Result(); len(q) != 1 || q[0] != arn {
		t.Fatalf("start queue %v, want the replication queued for the launcher", q)
	}
	r = result{}
	if msg := invokeJSON(t, fn, `{"action":"start","replicationConfigArn":"`+arn+`","startReplicationType":"start-replication"}`, &r); msg != "" {
		t.Fatalf("second start: %s", msg)
	}
	if r.Skipped == "" || !strings.Contains(r.Skipped, "initializing") {
		t.Fatalf("a start of a starting replication: %+v, want skipped with the reason", r)
	}
	r = result{}
	if msg := invokeJSON(t, fn, `{"action":"stop","replicationConfigArn":"`+arn+`"}`, &r); msg != "" {
		t.Fatalf("stop: %s", msg)
	}
	if r.Status != "stopping" || status() != "stopping" {
		t.Fatalf("after a scheduled stop: answer %+v, record %s; want stopping", r, status())
	}
	r = result{}
	if msg := invokeJSON(t, fn, `{"action":"sweep"}`, &r); msg != "" || r.Action != "sweep" {
		t.Fatalf("sweep: %+v %s", r, msg)
	}
	for payload, want := range map[string]string{
		`{"action":"explode"}`: `action "explode" is not one of start, stop, sweep`,
		`{"action":"start"}`:   "needs replicationConfigArn",
		`[1,2]`:                "not an event like",
		`{"action":"start","replicationConfigArn":"arn:aws:dms:us-east-1:000000000000:replication-config:NOPE"}`: "NOPE",
	} {
		if msg := invokeJSON(t, fn, payload, &r); !strings.Contains(msg, want) {
			t.Errorf("payload %s: error %q, want one containing %q", payload, msg, want)
		}
	}
}

// TestLambdaAnalyze runs cmd/lambda-analyze as Lambda does: it analyzes a
// real source and answers the plan.
func TestLambdaAnalyze(t *testing.T) {
	env, src, arn, _ := lambdaFixture(t, "lanalyze")
	testenv.Exec(t, src, `CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g; ANALYZE docs`)
	testenv.Exec(t, src, `CREATE TABLE log (line text)`)
	fn := startLambda(t, buildFunction(t, "analyze"), env)
	var a struct {
		Metadata struct {
			Tables, LOBColumns, TablesWithout int
			Rows, Bytes                       int64
			FullLoad                          bool
		}
		Plan struct {
			Units  int
			Reason string
		}
	}
	if msg := invokeJSON(t, fn, `{"replicationConfigArn":"`+arn+`"}`, &a); msg != "" {
		t.Fatalf("analyze: %s", msg)
	}
	m := a.Metadata
	if m.Tables != 2 || m.Rows < 4500 || m.Rows > 5500 || m.Bytes < 1<<20 || m.LOBColumns != 2 || m.TablesWithout != 1 || !m.FullLoad {
		t.Fatalf("metadata %+v: want 2 tables, about 5000 rows, over 1 MiB, 2 text columns, 1 keyless table, a full load", m)
	}
	if a.Plan.Units != 1 || !strings.Contains(a.Plan.Reason, "2 table(s)") {
		t.Fatalf("plan %+v, want 1 unit with a reason that counts the tables", a.Plan)
	}
	if msg := invokeJSON(t, fn, `{}`, &a); !strings.Contains(msg, "needs replicationConfigArn") {
		t.Fatalf("an empty event: %q", msg)
	}
}

// TestLambdaAPIWithServe splits the control plane as a deployment does:
// the DMS API is the Lambda function, and `sluice serve` (sharing its
// Redis and master key) runs the replicators. A start and a stop made
// through the function are queued and carried out by the server.
func TestLambdaAPIWithServe(t *testing.T) {
	storetest.Empty(t, lambdaRedisDB)
	env := lambdaEnv()
	c := (&gateway{fn: startLambda(t, buildLambda(t), env)}).client(testSecret)
	dir := t.TempDir()
	launchServer(t, []string{
		"SLUICE_REDIS_URL=" + env["SLUICE_REDIS_URL"], "SLUICE_MASTER_KEY=" + env["SLUICE_MASTER_KEY"],
		"SLUICE_ACCESS_KEY_ID=" + testKeyID, "SLUICE_SECRET_ACCESS_KEY=" + testSecret,
		"SLUICE_REPLICATOR_BIN=" + replicatorBin, "SLUICE_STATE_DIR=" + dir, "SLUICE_LEASE_TTL=3s",
	}, filepath.Join(dir, "serve.log"))
	ctx := context.Background()
	f := newFixture(t, c, "lsplit", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'i' || g FROM generate_series(1, 500) g`)
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication through the function: %v", err)
	}
	f.waitFor(t, c, "running", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "running" })
	testenv.Exec(t, f.src, `UPDATE items SET name = name || '!' WHERE id % 7 = 0; INSERT INTO items (name) VALUES ('late')`)
	testenv.WaitEqual(t, nil, f.src, f.dst, time.Minute, "items")
	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication through the function: %v", err)
	}
	r := f.waitFor(t, c, "stopped", time.Minute, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if aws.ToString(r.StopReason) != "Stop Reason NORMAL" || !strings.HasPrefix(aws.ToString(r.RecoveryCheckpoint), "checkpoint:") {
		t.Fatalf("stopped with %q, checkpoint %q; want a normal stop with a checkpoint", aws.ToString(r.StopReason), aws.ToString(r.RecoveryCheckpoint))
	}
}

// TestLambdaIAMAuth: with SLUICE_API_AUTH=iam the API function takes the
// requests API Gateway's IAM authorizer verified (the caller is in the
// event's request context) and refuses the others, including one that
// claims a caller in a header of its own.
func TestLambdaIAMAuth(t *testing.T) {
	storetest.Empty(t, lambdaRedisDB)
	env := lambdaEnv()
	delete(env, "SLUICE_ACCESS_KEY_ID")
	delete(env, "SLUICE_SECRET_ACCESS_KEY")
	env["SLUICE_API_AUTH"] = "iam"
	fn := startLambda(t, buildLambda(t), env)
	ctx := context.Background()
	verified := &gateway{fn: fn, iamCaller: "arn:aws:iam::000000000000:role/ops"}
	if _, err := verified.client("any-secret-the-gateway-checked").DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{}); err != nil && faultCode(err) != "ResourceNotFoundFault" {
		t.Fatalf("a request the IAM authorizer verified: %v", err)
	}
	unverified := &gateway{fn: fn}
	_, err := unverified.client(testSecret).DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
	requireFault(t, err, "AccessDeniedFault")
	req, _ := http.NewRequest(http.MethodGet, "https://"+lambdaAPIHost+"/replications/x", nil)
	req.Header.Set("X-Sluice-Iam-Caller", "arn:aws:iam::000000000000:root")
	resp, err := (&http.Client{Transport: unverified}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a request claiming an IAM caller in its own header: status %d, want 403", resp.StatusCode)
	}
}
