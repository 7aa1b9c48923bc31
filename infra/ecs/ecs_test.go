package ecs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/mototest"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
)

// The tests run against moto_server (EC2 launch type: moto's Fargate
// networking fails on awsvpc task definitions) and the local Redis,
// database 13.
const (
	testCluster  = "sluice-test"
	testTaskDef  = "sluice-replicator"
	bigTaskDef   = "sluice-replicator-big" // more memory than the container instance has
	testRedisURL = "redis://redis.internal:6379/13"
	poll         = 50 * time.Millisecond
	password     = "s3cr3t-pa55"
)

// fixture is what every test shares: the cluster, its task definitions and
// container instance in moto, and the store.
var fixture struct {
	once sync.Once
	err  error
	st   *store.Store
}

// recorder keeps the body of every request an ECS client sends, to prove
// what never goes to ECS. It also mends moto's answers: moto writes a
// container's cpu as a JSON number where the ECS API has a string, and the
// SDK refuses the whole answer.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

var motoCPU = regexp.MustCompile(`"cpu": (\d+)`)

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	switch target := req.Header.Get("X-Amz-Target"); {
	case strings.HasSuffix(target, ".RunTask"), strings.HasSuffix(target, ".DescribeTasks"), strings.HasSuffix(target, ".StopTask"):
		// In a Task, every cpu is a string (a ContainerOverride's is not,
		// and Sluice sets none).
		b = motoCPU.ReplaceAll(b, []byte(`"cpu": "$1"`))
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return resp, nil
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// harness is one test's moto client and store.
type harness struct {
	api *awsecs.Client
	st  *store.Store
	rec *recorder
}

func setup(t *testing.T) harness {
	t.Helper()
	url := mototest.Start(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	api := awsecs.NewFromConfig(cfg, func(o *awsecs.Options) { o.HTTPClient = &http.Client{Transport: rec} })
	fixture.once.Do(func() { fixture.st, fixture.err = prepare(ctx, api, url) })
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return harness{api: api, st: fixture.st, rec: rec}
}

// prepare empties Redis database 13 and builds the cluster in moto.
func prepare(ctx context.Context, api *awsecs.Client, url string) (*store.Store, error) {
	st, err := store.Open(ctx, "redis://127.0.0.1:6379/13", "sluice")
	if err != nil {
		return nil, err
	}
	if err := st.Redis().FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	// moto moves a task one state towards STOPPED at every DescribeTasks
	// by default; here tasks run until they are stopped, as on ECS.
	resp, err := http.Post(url+"/moto-api/state-manager/set-transition", "application/json",
		strings.NewReader(`{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000000}}`))
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(testCluster)}); err != nil {
		return nil, err
	}
	for name, mib := range map[string]int32{testTaskDef: 128, bigTaskDef: 1 << 20} {
		_, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
			Family: aws.String(name),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String(DefaultContainer), Image: aws.String("sluice-replicator:test"), MemoryReservation: aws.Int32(mib),
			}},
		})
		if err != nil {
			return nil, err
		}
	}
	// EC2 tasks need a container instance, and moto registers one only
	// for an instance its EC2 knows.
	instance, err := runInstance(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("run an EC2 instance in moto: %w", err)
	}
	doc := fmt.Sprintf(`{"instanceId":%q,"region":"us-east-1"}`, instance)
	_, err = api.RegisterContainerInstance(ctx, &awsecs.RegisterContainerInstanceInput{Cluster: aws.String(testCluster), InstanceIdentityDocument: aws.String(doc)})
	return st, err
}

// runInstance starts an EC2 instance in moto with a signed Query API call
// (the EC2 SDK module is large, and this is its only use).
func runInstance(ctx context.Context, url string) (string, error) {
	body := "Action=RunInstances&Version=2016-11-15&ImageId=ami-12345678&MinCount=1&MaxCount=1&InstanceType=m5.large"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now()); err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Instances []struct {
			ID string `xml:"instanceId"`
		} `xml:"instancesSet>item"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Instances) == 0 {
		return "", fmt.Errorf("RunInstances answered %s without an instance (%v)", resp.Status, err)
	}
	return out.Instances[0].ID, nil
}

func testConfig() Config {
	return Config{Cluster: testCluster, TaskDefinition: testTaskDef, LaunchType: types.LaunchTypeEc2, RedisURL: testRedisURL, PollInterval: poll}
}

// launcher returns a launcher whose watchers end with the test.
func (e harness) launcher(t *testing.T, cfg Config) (*Launcher, chan launch.Report) {
	t.Helper()
	reports := make(chan launch.Report, 64)
	l, err := New(e.api, e.st, cfg, reports, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Shutdown(context.Background()) })
	return l, reports
}

// replicationID is unique per test and run, so -count=2 reuses moto and
// Redis.
func replicationID(t *testing.T) string {
	return fmt.Sprintf("arn:aws:dms:us-east-1:000000000000:replication-config:%s%d", strings.ToUpper(t.Name()), time.Now().UnixNano())
}

// waitReport returns the first report that ok accepts.
// running is l.Running(id), failing the test on an error.
func running(t *testing.T, l *Launcher, id string) bool {
	t.Helper()
	ok, err := l.Running(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func waitReport(t *testing.T, reports <-chan launch.Report, what string, ok func(launch.Report) bool) launch.Report {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-reports:
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no report %s within 10s", what)
		}
	}
}

func (e harness) describe(t *testing.T, arn string) types.Task {
	t.Helper()
	out, err := e.api.DescribeTasks(context.Background(), &awsecs.DescribeTasksInput{
		Cluster: aws.String(testCluster), Tasks: []string{arn}, Include: []types.TaskField{types.TaskFieldTags},
	})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("DescribeTasks %s = %v, %d tasks", arn, err, len(out.Tasks))
	}
	return out.Tasks[0]
}

func (e harness) recordedTask(t *testing.T, id string) string {
	t.Helper()
	arn, err := e.st.ReplicatorTask(context.Background(), id)
	if err != nil {
		return ""
	}
	return arn
}

func taskDoc(id string) []byte {
	return []byte(`{"ReplicationConfigIdentifier":"orders-to-reporting","ReplicationType":"cdc",` +
		`"SourceEndpoint":{"EngineName":"postgres","ServerName":"10.0.0.5","Port":5432,"Username":"replicator","Password":"` + password + `"},` +
		`"TargetEndpoint":{"EngineName":"postgres","ServerName":"10.0.0.9","Port":5432,"Username":"loader","Password":"` + password + `"},` +
		`"Note":"` + id + `"}`)
}

func TestLaunchStop(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	l, reports := e.launcher(t, testConfig())
	id := replicationID(t)

	// An earlier replicator's leftovers must not pass for the new one's.
	stale, _ := json.Marshal(runtime.Snapshot{Phase: "stale"})
	if err := e.st.PutReplicatorStats(ctx, id, stale, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutReplicatorExit(ctx, id, "an earlier replicator's error"); err != nil {
		t.Fatal(err)
	}

	doc := taskDoc(id)
	if err := l.Launch(ctx, id, doc, launch.Size{Units: 2, MemoryLimitMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	arn := e.recordedTask(t, id)
	if arn == "" || !running(t, l, id) {
		t.Fatalf("after Launch: recorded task %q, Running %v", arn, running(t, l, id))
	}

	got := e.describe(t, arn)
	if got.LaunchType != types.LaunchTypeEc2 || aws.ToString(got.StartedBy) != "sluice" || !strings.HasSuffix(aws.ToString(got.TaskDefinitionArn), "task-definition/"+testTaskDef+":1") {
		t.Errorf("task: launch type %s, startedBy %q, task definition %s", got.LaunchType, aws.ToString(got.StartedBy), aws.ToString(got.TaskDefinitionArn))
	}
	tags := map[string]string{}
	for _, tg := range got.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["sluice:replication"] != id {
		t.Errorf("tags = %v; want sluice:replication = %s", tags, id)
	}
	o := got.Overrides
	if o == nil || aws.ToString(o.Cpu) != "512" || aws.ToString(o.Memory) != "4096" || len(o.ContainerOverrides) != 1 {
		t.Fatalf("overrides = %+v; want cpu 512, memory 4096, one container", o)
	}
	co := o.ContainerOverrides[0]
	if aws.ToString(co.Name) != "replicator" || strings.Join(co.Command, " ") != "-task redis" {
		t.Errorf("container override: name %q, command %q", aws.ToString(co.Name), co.Command)
	}
	envs := map[string]string{}
	for _, kv := range co.Environment {
		envs[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	key, holder := envs["SLUICE_TASK_KEY"], envs["SLUICE_LEASE_HOLDER"]
	want := map[string]string{
		"SLUICE_REDIS_URL": testRedisURL, "SLUICE_REPLICATION_ARN": id, "SLUICE_TASK_KEY": key,
		"SLUICE_LEASE_TTL": "15s", "GOMEMLIMIT": "3686MiB", "SLUICE_LEASE_HOLDER": holder,
	}
	// The lease holder name is the launcher's, so that it can release the
	// lease of a task it sees killed.
	if !strings.HasPrefix(holder, "ecs/") {
		t.Errorf("SLUICE_LEASE_HOLDER = %q, want a name the launcher made (ecs/…)", holder)
	}
	if key == "" || fmt.Sprint(envs) != fmt.Sprint(want) {
		t.Errorf("environment = %v; want %v with a key", envs, want)
	}

	// The document is in Redis, sealed for this replication with the key
	// from the environment, and in no ECS call.
	sealed, err := e.st.TakeHandoff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := box.Open(sealed, id); err != nil || plain != string(doc) {
		t.Fatalf("the handoff opens to %q, %v; want the task document", plain, err)
	}
	if e.rec.contains(password) || e.rec.contains(sealed) {
		t.Error("a password or the sealed document went to ECS")
	}

	// Reports carry this replicator's statistics, never the stale ones.
	if err := e.st.PutReplicatorStats(ctx, id, stale, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * poll)
	snap := runtime.Snapshot{Phase: "cdc", Checkpoint: "checkpoint:test", Tables: []runtime.TableSnapshot{{SchemaName: "public", TableName: "orders", Inserts: 7}}}
	b, _ := json.Marshal(snap)
	if err := e.st.PutReplicatorStats(ctx, id, b, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := waitReport(t, reports, "with statistics", func(r launch.Report) bool {
		if bytes.Equal(r.Stats, stale) {
			t.Fatal("an earlier replicator's statistics were reported")
		}
		return r.Stats != nil
	})
	if r.ID != id || r.Exited || !bytes.Equal(r.Stats, b) {
		t.Errorf("report = %+v, stats %s; want %s", r, r.Stats, b)
	}

	if err := l.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	r = waitReport(t, reports, "of the end", func(r launch.Report) bool { return r.Exited })
	if r.Holder != holder {
		t.Errorf("the end's report names the holder %q, want %q", r.Holder, holder)
	}
	if r.ID != id || r.ExitErr != "" || r.Killed || !bytes.Equal(r.Stats, b) {
		t.Errorf("last report = %+v; want a clean end with the last statistics", r)
	}
	got = e.describe(t, arn)
	if aws.ToString(got.LastStatus) != "STOPPED" || aws.ToString(got.StoppedReason) != "stopped by Sluice: StopReplication" {
		t.Errorf("task after Stop: %s, %q", aws.ToString(got.LastStatus), aws.ToString(got.StoppedReason))
	}
	if running(t, l, id) || e.recordedTask(t, id) != "" {
		t.Error("the stopped task is still running or recorded")
	}
	// Stopping what does not run is not an error.
	if err := l.Stop(ctx, id); err != nil {
		t.Errorf("Stop of a stopped replication: %v", err)
	}
}

// TestFargateSize launches with the FARGATE launch type (moto runs it from
// a task definition without awsvpc) and a plan above the largest Fargate
// task.
func TestFargateSize(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.LaunchType = types.LaunchTypeFargate
	cfg.Subnets, cfg.SecurityGroups = []string{"subnet-0a1b2c3d"}, []string{"sg-0a1b2c3d"}
	l, _ := e.launcher(t, cfg)
	id := replicationID(t)
	if err := l.Launch(ctx, id, taskDoc(id), launch.Size{Units: 128, MemoryLimitMiB: 128 * launch.UnitMiB}); err != nil {
		t.Fatal(err)
	}
	got := e.describe(t, e.recordedTask(t, id))
	o := got.Overrides
	if got.LaunchType != types.LaunchTypeFargate || aws.ToString(o.Cpu) != "16384" || aws.ToString(o.Memory) != "122880" {
		t.Errorf("task: %s, cpu %s, memory %s; want FARGATE at the largest size", got.LaunchType, aws.ToString(o.Cpu), aws.ToString(o.Memory))
	}
	for _, kv := range o.ContainerOverrides[0].Environment {
		if aws.ToString(kv.Name) == "GOMEMLIMIT" && aws.ToString(kv.Value) != "110592MiB" {
			t.Errorf("GOMEMLIMIT = %s; want 9/10 of the capped task memory", aws.ToString(kv.Value))
		}
	}
	if err := l.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestExitMessage: a task ECS stopped (not Sluice) whose replicator
// recorded why it failed reports that message.
func TestExitMessage(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	l, reports := e.launcher(t, testConfig())
	id := replicationID(t)
	if err := l.Launch(ctx, id, taskDoc(id), launch.Size{Units: 1, MemoryLimitMiB: launch.UnitMiB}); err != nil {
		t.Fatal(err)
	}
	const msg = `replication slot "sluice_orders" does not exist: it was dropped; start the replication again with start-replication`
	if err := e.st.PutReplicatorExit(ctx, id, msg); err != nil {
		t.Fatal(err)
	}
	arn := e.recordedTask(t, id)
	if _, err := e.api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(testCluster), Task: aws.String(arn), Reason: aws.String("Essential container in task exited")}); err != nil {
		t.Fatal(err)
	}
	r := waitReport(t, reports, "of the end", func(r launch.Report) bool { return r.Exited })
	if r.ID != id || r.ExitErr != msg || r.Killed {
		t.Errorf("last report = %+v; want ExitErr %q", r, msg)
	}
	if running(t, l, id) {
		t.Error("still running")
	}
}

func TestLaunchFails(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tests := []struct {
		name, taskDef, errHas string
	}{
		// ECS refuses the call.
		{"unknown task definition", "sluice-no-such-task-definition", "Unable to describe task definition"},
		// ECS accepts it but starts nothing (moto gives no failure either).
		{"no room", bigTaskDef, "ECS started no replicator task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TaskDefinition = tt.taskDef
			l, reports := e.launcher(t, cfg)
			id := replicationID(t)
			err := l.Launch(ctx, id, taskDoc(id), launch.Size{Units: 1, MemoryLimitMiB: launch.UnitMiB})
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), tt.taskDef) {
				t.Fatalf("Launch = %v; want an error naming the task definition and saying %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), password) {
				t.Error("the error holds a password")
			}
			if _, err := e.st.TakeHandoff(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a failed launch left its task document behind (%v)", err)
			}
			if running(t, l, id) || e.recordedTask(t, id) != "" {
				t.Error("a failed launch is running or recorded")
			}
			select {
			case r := <-reports:
				t.Errorf("a failed launch reported %+v", r)
			case <-time.After(3 * poll):
			}
		})
	}
}

// TestAnotherServer: a server started later finds the task an earlier one
// launched (Running, reports, Stop), and a Launch replaces it.
func TestAnotherServer(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	first, _ := e.launcher(t, testConfig())
	id := replicationID(t)
	if err := first.Launch(ctx, id, taskDoc(id), launch.Size{Units: 1, MemoryLimitMiB: launch.UnitMiB}); err != nil {
		t.Fatal(err)
	}
	old := e.recordedTask(t, id)
	first.Shutdown(ctx)
	if aws.ToString(e.describe(t, old).LastStatus) != "RUNNING" {
		t.Fatal("Shutdown stopped the task; it must leave it running")
	}

	second, reports := e.launcher(t, testConfig())
	if !running(t, second, id) {
		t.Fatal("the second server does not see the task")
	}
	b, _ := json.Marshal(runtime.Snapshot{Phase: "cdc"})
	if err := e.st.PutReplicatorStats(ctx, id, b, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitReport(t, reports, "from the adopted task", func(r launch.Report) bool { return r.ID == id && r.Stats != nil && !r.Exited })
	second.Shutdown(ctx)

	third, reports := e.launcher(t, testConfig())
	if err := third.Launch(ctx, id, taskDoc(id), launch.Size{Units: 1, MemoryLimitMiB: launch.UnitMiB}); err != nil {
		t.Fatal(err)
	}
	got := e.describe(t, old)
	if aws.ToString(got.LastStatus) != "STOPPED" || aws.ToString(got.StoppedReason) != replacedWhy {
		t.Errorf("the replaced task: %s, %q", aws.ToString(got.LastStatus), aws.ToString(got.StoppedReason))
	}
	if now := e.recordedTask(t, id); now == "" || now == old {
		t.Errorf("recorded task = %q; want the new one", now)
	}
	if err := third.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitReport(t, reports, "of the end", func(r launch.Report) bool { return r.Exited && r.ExitErr == "" })
}

// TestVanishedTask: a recorded task ECS does not know (it ended long ago)
// ends with a message, once DescribeTasks has missed it for a while.
func TestVanishedTask(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	l, reports := e.launcher(t, testConfig())
	id := replicationID(t)
	gone := "arn:aws:ecs:us-east-1:123456789012:task/" + testCluster + "/00000000000000000000000000000000"
	if err := e.st.PutReplicatorTask(ctx, id, gone); err != nil {
		t.Fatal(err)
	}
	if !running(t, l, id) {
		t.Fatal("a recorded task is not running")
	}
	start := time.Now()
	r := waitReport(t, reports, "of the end", func(r launch.Report) bool { return r.Exited })
	if !strings.Contains(r.ExitErr, "ECS no longer knows the replicator task "+gone) {
		t.Errorf("ExitErr = %q", r.ExitErr)
	}
	if waited := time.Since(start); waited < (missingPolls-1)*poll {
		t.Errorf("ended after %s: one missed describe must not end it", waited)
	}
	if e.recordedTask(t, id) != "" {
		t.Error("the vanished task is still recorded")
	}
}

func TestTaskSize(t *testing.T) {
	tests := []struct {
		mem, cpu, task int
		capped         bool
	}{
		{100, 256, 512, false},
		{1536, 256, 2048, false}, // 0.25 vCPU has no 1.5 GiB
		{2048, 256, 2048, false}, // 1 unit
		{3000, 512, 3072, false},
		{4096, 512, 4096, false},     // 2 units
		{8192, 1024, 8192, false},    // 4 units
		{16384, 2048, 16384, false},  // 8 units
		{32768, 8192, 32768, false},  // 16 units: 4 vCPU stops at 30 GiB
		{65536, 16384, 65536, false}, // 32 units: 8 vCPU stops at 60 GiB
		{70000, 16384, 73728, false}, // rounded up to the 8 GiB step
		{131072, 16384, 122880, true},
	}
	for _, tt := range tests {
		cpu, task, capped := taskSize(tt.mem)
		if cpu != tt.cpu || task != tt.task || capped != tt.capped {
			t.Errorf("taskSize(%d) = %d, %d, %v; want %d, %d, %v", tt.mem, cpu, task, capped, tt.cpu, tt.task, tt.capped)
		}
	}
}

func TestEnded(t *testing.T) {
	const arn = "arn:aws:ecs:us-east-1:1:task/c/abc"
	stopped := func(reason, containerReason string, code *int32, started bool) *types.Task {
		et := &types.Task{StoppedReason: aws.String(reason), Containers: []types.Container{
			{Name: aws.String("log-router"), ExitCode: aws.Int32(1)},
			{Name: aws.String("replicator"), ExitCode: code, Reason: aws.String(containerReason)},
		}}
		if started {
			et.StartedAt = aws.Time(time.Now())
		}
		return et
	}
	tests := []struct {
		name     string
		et       *types.Task
		stopping bool
		want     string
		killed   bool
	}{
		// A graceful end: only the replicator container's code counts.
		{"clean", stopped("Essential container in task exited", "", aws.Int32(0), true), false, "", false},
		{"error", stopped("Essential container in task exited", "", aws.Int32(1), true), false,
			"the replicator task stopped: Essential container in task exited (exit code 1)", false},
		// SIGKILL after the stop timeout, or the OOM killer: killed.
		{"oom", stopped("Essential container in task exited", "OutOfMemoryError: Container killed due to memory usage", aws.Int32(137), true), false,
			"the replicator task stopped: Essential container in task exited: OutOfMemoryError: Container killed due to memory usage (exit code 137)", true},
		// Never ran: a failure to report, not a kill to recover from.
		{"no image", stopped("CannotPullContainerError: pull image manifest has been retried 5 time(s)", "", nil, false), false,
			"the replicator task stopped: CannotPullContainerError: pull image manifest has been retried 5 time(s) (no exit code)", false},
		// Ran, and its host went away: killed.
		{"host gone", stopped("Host EC2 (instance i-0abc) terminated.", "", nil, true), false,
			"the replicator task stopped: Host EC2 (instance i-0abc) terminated. (no exit code)", true},
		// Stopped by Sluice before its container ran.
		{"stopped pending", stopped(stopReason, "", nil, false), true, "", false},
		{"gone", nil, false, "ECS no longer knows the replicator task " + arn + ": it ended more than about an hour ago, or never started", false},
		{"gone after Stop", nil, true, "", false},
	}
	for _, tt := range tests {
		got, killed := ended(arn, tt.et, "replicator", tt.stopping)
		if got != tt.want || killed != tt.killed {
			t.Errorf("%s: ended = %q, %v; want %q, %v", tt.name, got, killed, tt.want, tt.killed)
		}
	}
}

// TestRunTaskInput checks what moto cannot show: the awsvpc network of a
// Fargate task.
func TestRunTaskInput(t *testing.T) {
	cfg := Config{Cluster: "c", TaskDefinition: "td", LaunchType: types.LaunchTypeFargate, Subnets: []string{"subnet-1", "subnet-2"},
		SecurityGroups: []string{"sg-1"}, AssignPublicIP: true, Container: "replicator", RedisURL: testRedisURL, LeaseTTL: 2 * time.Second}
	in := cfg.runTaskInput("arn:x", "key", size{cpu: 1024, memMiB: 8192, limitMiB: 7372})
	vpc := in.NetworkConfiguration.AwsvpcConfiguration
	if fmt.Sprintf("%v %v %v", vpc.Subnets, vpc.SecurityGroups, vpc.AssignPublicIp) != "[subnet-1 subnet-2] [sg-1] ENABLED" {
		t.Errorf("awsvpc = %+v", vpc)
	}
	if in.LaunchType != types.LaunchTypeFargate || aws.ToInt32(in.Count) != 1 || in.ClientToken != nil {
		t.Errorf("input = %+v", in)
	}
	cfg.AssignPublicIP = false
	if got := cfg.runTaskInput("arn:x", "key", size{}).NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp; got != types.AssignPublicIpDisabled {
		t.Errorf("AssignPublicIp = %q; want DISABLED said outright", got)
	}
	// EC2: a network only for awsvpc task definitions (subnets set), and
	// never AssignPublicIp, which EC2 refuses.
	cfg.LaunchType, cfg.Subnets, cfg.SecurityGroups = types.LaunchTypeEc2, nil, nil
	if in := cfg.runTaskInput("arn:x", "key", size{}); in.NetworkConfiguration != nil {
		t.Errorf("EC2 without subnets got a network: %+v", in.NetworkConfiguration)
	}
	cfg.Subnets = []string{"subnet-1"}
	if got := cfg.runTaskInput("arn:x", "key", size{}).NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp; got != "" {
		t.Errorf("EC2 AssignPublicIp = %q; want unset", got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{
		"SLUICE_ECS_CLUSTER": "sluice", "SLUICE_ECS_TASK_DEFINITION": "sluice-replicator:3",
		"SLUICE_ECS_SUBNETS": " subnet-0a, subnet-0b ,", "SLUICE_ECS_SECURITY_GROUPS": "sg-0a",
		"SLUICE_REDIS_URL":       "redis://10.0.0.7:6379/0",
		"SLUICE_ECS_LAUNCH_TYPE": "", "SLUICE_ECS_CONTAINER": "", "SLUICE_ECS_ASSIGN_PUBLIC_IP": "",
		"SLUICE_ECS_REDIS_URL": "", "SLUICE_LEASE_TTL": "",
	}
	tests := []struct {
		name   string
		set    map[string]string
		errHas []string // nil: no error
	}{
		{name: "defaults"},
		{name: "nothing", set: map[string]string{"SLUICE_ECS_CLUSTER": "", "SLUICE_ECS_TASK_DEFINITION": "", "SLUICE_ECS_SUBNETS": "", "SLUICE_ECS_SECURITY_GROUPS": "", "SLUICE_REDIS_URL": ""},
			errHas: []string{"SLUICE_ECS_CLUSTER is not set", "SLUICE_ECS_TASK_DEFINITION is not set", "SLUICE_ECS_SUBNETS is not set", "SLUICE_ECS_SECURITY_GROUPS is not set", "set SLUICE_ECS_REDIS_URL"}},
		// The server's own Redis URL is often loopback; the tasks cannot use it.
		{name: "loopback redis", set: map[string]string{"SLUICE_REDIS_URL": "redis://127.0.0.1:6379/0"}, errHas: []string{"loopback", "SLUICE_ECS_REDIS_URL"}},
		{name: "ecs redis overrides", set: map[string]string{"SLUICE_REDIS_URL": "redis://127.0.0.1:6379/0", "SLUICE_ECS_REDIS_URL": "redis://10.0.0.7:6379/0"}},
		{name: "bad redis url", set: map[string]string{"SLUICE_ECS_REDIS_URL": "http://cache:6379"}, errHas: []string{"not a Redis URL"}},
		{name: "launch type", set: map[string]string{"SLUICE_ECS_LAUNCH_TYPE": "EXTERNAL"}, errHas: []string{`SLUICE_ECS_LAUNCH_TYPE "EXTERNAL" is not FARGATE or EC2`}},
		// EC2 needs no network, and the type is case-blind.
		{name: "ec2", set: map[string]string{"SLUICE_ECS_LAUNCH_TYPE": "ec2", "SLUICE_ECS_SUBNETS": "", "SLUICE_ECS_SECURITY_GROUPS": ""}},
		{name: "ec2 public ip", set: map[string]string{"SLUICE_ECS_LAUNCH_TYPE": "EC2", "SLUICE_ECS_ASSIGN_PUBLIC_IP": "true"}, errHas: []string{"needs SLUICE_ECS_LAUNCH_TYPE=FARGATE"}},
		{name: "public ip", set: map[string]string{"SLUICE_ECS_ASSIGN_PUBLIC_IP": "yes"}, errHas: []string{`SLUICE_ECS_ASSIGN_PUBLIC_IP "yes" is not true or false`}},
		// Swapped lists are a common slip.
		{name: "swapped", set: map[string]string{"SLUICE_ECS_SUBNETS": "sg-0a", "SLUICE_ECS_SECURITY_GROUPS": "subnet-0a"},
			errHas: []string{`SLUICE_ECS_SUBNETS holds "sg-0a"`, `SLUICE_ECS_SECURITY_GROUPS holds "subnet-0a"`}},
		{name: "lease ttl", set: map[string]string{"SLUICE_LEASE_TTL": "500ms"}, errHas: []string{`SLUICE_LEASE_TTL "500ms" is not a duration of at least 1s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range tt.set {
				t.Setenv(k, v)
			}
			cfg, err := ConfigFromEnv()
			if tt.errHas == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want one saying %q", tt.errHas)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if cfg.Cluster != "" {
				t.Error("a failed ConfigFromEnv returned a config")
			}
		})
	}

	for k, v := range base {
		t.Setenv(k, v)
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Cluster: "sluice", TaskDefinition: "sluice-replicator:3", LaunchType: types.LaunchTypeFargate,
		Subnets: []string{"subnet-0a", "subnet-0b"}, SecurityGroups: []string{"sg-0a"}, Container: "replicator",
		RedisURL: "redis://10.0.0.7:6379/0", LeaseTTL: 15 * time.Second, PollInterval: DefaultPollInterval}
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", want) {
		t.Errorf("ConfigFromEnv = %+v; want %+v", cfg, want)
	}
}
