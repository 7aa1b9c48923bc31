package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// lambdaRedisDB is the Redis database the Lambda tests own: they empty it.
const lambdaRedisDB = 8

// lambdaAPIHost is the API Gateway domain the client believes it calls.
// Nothing dials it: the gateway transport hands requests to the function.
const lambdaAPIHost = "sluice-api.execute-api.us-east-1.amazonaws.test"

// buildLambda builds cmd/lambda-api as Lambda's provided.al2023 runtime
// runs it: a static binary named bootstrap, without the RPC mode.
func buildLambda(t *testing.T) string { return buildFunction(t, "api") }

// buildFunction builds cmd/lambda-<name> the same way.
func buildFunction(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "../cmd/lambda-"+name)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/lambda-%s: %v\n%s", name, err, out)
	}
	return bin
}

// lambdaEnv is the function's configuration as a deployment would set it.
func lambdaEnv() map[string]string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return map[string]string{
		"SLUICE_REDIS_URL":         fmt.Sprintf("redis://127.0.0.1:6379/%d", lambdaRedisDB),
		"SLUICE_ACCESS_KEY_ID":     testKeyID,
		"SLUICE_SECRET_ACCESS_KEY": testSecret,
		"SLUICE_MASTER_KEY":        base64.StdEncoding.EncodeToString(key),
	}
}

// lambdaFunction is one execution environment: the function's process and
// a Runtime API on loopback that feeds it events one at a time, as Lambda
// does.
type lambdaFunction struct {
	api    *httptest.Server
	events chan *invocation // unbuffered: an event leaves only when the function asks for one

	mu      sync.Mutex
	pending map[string]*invocation

	initErrors chan runtimeError
	asked      atomic.Int64 // GET /next calls
	seq        atomic.Int64

	log     string
	exited  chan struct{}
	exitErr error // set before exited closes
}

type invocation struct {
	id      string
	payload []byte
	done    chan invocationResult // buffered: the answer never waits for the invoker
}

type invocationResult struct {
	payload []byte
	failed  bool // posted to /error rather than /response
}

// runtimeError is the body of an /error or /init/error post.
type runtimeError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
	header       string // Lambda-Runtime-Function-Error-Type
}

// startLambda runs the function binary against a fresh Runtime API, with
// the environment Lambda gives a custom runtime plus env.
func startLambda(t *testing.T, bin string, env map[string]string) *lambdaFunction {
	t.Helper()
	fn := &lambdaFunction{
		events:     make(chan *invocation),
		pending:    map[string]*invocation{},
		initErrors: make(chan runtimeError, 4),
		exited:     make(chan struct{}),
	}
	const base = "/2018-06-01/runtime/"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+base+"invocation/next", fn.next)
	mux.HandleFunc("POST "+base+"invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) { fn.answer(w, r, false) })
	mux.HandleFunc("POST "+base+"invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) { fn.answer(w, r, true) })
	mux.HandleFunc("POST "+base+"init/error", func(w http.ResponseWriter, r *http.Request) {
		e, err := readRuntimeError(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case fn.initErrors <- e:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	fn.api = httptest.NewServer(mux)
	t.Cleanup(fn.api.Close) // runs after the process is gone, so no GET /next is left open

	dir := t.TempDir()
	fn.log = filepath.Join(dir, "function.log")
	logf, err := os.Create(fn.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(fn.api.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=sluice-api",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/sluice-api",
		"AWS_LAMBDA_LOG_STREAM_NAME=2025/01/01/[$LATEST]0123456789abcdef",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"LAMBDA_TASK_ROOT=" + dir, "_HANDLER=bootstrap", "TZ=:UTC",
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		fn.exitErr = cmd.Wait()
		close(fn.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-fn.exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(fn.log)
			t.Logf("function log:\n%s", b)
		}
	})
	return fn
}

func readRuntimeError(r *http.Request) (runtimeError, error) {
	var e runtimeError
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
		return e, fmt.Errorf("the error report is not JSON: %v", err)
	}
	e.header = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	return e, nil
}

// next hands the function the next event, waiting for one as long as the
// function waits.
func (fn *lambdaFunction) next(w http.ResponseWriter, r *http.Request) {
	fn.asked.Add(1)
	var inv *invocation
	select {
	case inv = <-fn.events:
	case <-r.Context().Done():
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:sluice-api")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	_, _ = w.Write(inv.payload)
}

// answer routes the function's response or error to the waiting invoker.
func (fn *lambdaFunction) answer(w http.ResponseWriter, r *http.Request, failed bool) {
	fn.mu.Lock()
	inv, ok := fn.pending[r.PathValue("id")]
	delete(fn.pending, r.PathValue("id"))
	fn.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv.done <- invocationResult{payload: b, failed: failed}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// invoke queues one event and waits for the function's answer.
func (fn *lambdaFunction) invoke(ctx context.Context, payload []byte) (invocationResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inv := &invocation{
		id:      fmt.Sprintf("00000000-0000-4000-8000-%012d", fn.seq.Add(1)),
		payload: payload,
		done:    make(chan invocationResult, 1),
	}
	fn.mu.Lock()
	fn.pending[inv.id] = inv
	fn.mu.Unlock()
	defer func() {
		fn.mu.Lock()
		delete(fn.pending, inv.id)
		fn.mu.Unlock()
	}()
	select {
	case fn.events <- inv:
	case <-fn.exited:
		return invocationResult{}, fmt.Errorf("the function exited (%v) before it took the event", fn.exitErr)
	case <-ctx.Done():
		return invocationResult{}, fmt.Errorf("the function did not ask for the event: %w", ctx.Err())
	}
	select {
	case res := <-inv.done:
		return res, nil
	case <-fn.exited:
		return invocationResult{}, fmt.Errorf("the function exited (%v) during the invocation", fn.exitErr)
	case <-ctx.Done():
		return invocationResult{}, fmt.Errorf("the function did not answer: %w", ctx.Err())
	}
}

// gateway is API Gateway's HTTP API in front of the function, as an
// http.RoundTripper: each request becomes a payload format 2.0 event with
// the path, query, headers and body as they would cross the wire, and the
// function's answer becomes the response.
type gateway struct {
	fn *lambdaFunction
	// iamCaller, when set, is the caller an AWS_IAM authorizer verified.
	iamCaller string

	mu     sync.Mutex
	bodies []string // every response body, to look for what must not leak
}

func (g *gateway) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string]string{"host": host, "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "https", "x-forwarded-port": "443"}
	var cookies []string
	for k, vs := range req.Header {
		if strings.EqualFold(k, "Cookie") {
			for _, v := range vs {
				cookies = append(cookies, strings.Split(v, "; ")...)
			}
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	// Go's transport sends the length from the field, not the header map.
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	now := time.Now()
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default",
		RawPath: req.URL.EscapedPath(), RawQueryString: req.URL.RawQuery,
		Cookies: cookies, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "$default", AccountID: "000000000000", Stage: "$default",
			RequestID: fmt.Sprintf("req-%d", now.UnixNano()), APIID: "sluice-api",
			DomainName: host, DomainPrefix: strings.Split(host, ".")[0],
			Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: req.Method, Path: req.URL.Path, Protocol: "HTTP/1.1",
				SourceIP: "127.0.0.1", UserAgent: req.UserAgent(),
			},
		},
	}
	if g.iamCaller != "" {
		e.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: g.iamCaller},
		}
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	res, err := g.fn.invoke(req.Context(), payload)
	if err != nil {
		return nil, err
	}
	if res.failed {
		// API Gateway would answer a bare 500; the function's own error
		// says more when a test fails.
		return nil, fmt.Errorf("the function failed the invocation: %s", res.payload)
	}
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.payload, &out); err != nil {
		return nil, fmt.Errorf("the function's answer is not an HTTP API response: %v: %s", err, res.payload)
	}
	respBody := []byte(out.Body)
	if out.IsBase64Encoded {
		if respBody, err = base64.StdEncoding.DecodeString(out.Body); err != nil {
			return nil, fmt.Errorf("the function's base64 body does not decode: %v", err)
		}
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, string(respBody))
	g.mu.Unlock()
	resp := &http.Response{
		StatusCode: out.StatusCode, Status: fmt.Sprintf("%d %s", out.StatusCode, http.StatusText(out.StatusCode)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(respBody)), ContentLength: int64(len(respBody)),
		Request: req,
	}
	for k, v := range out.Headers {
		resp.Header.Set(k, v)
	}
	for _, c := range out.Cookies {
		resp.Header.Add("Set-Cookie", c)
	}
	return resp, nil
}

// client returns an official DMS client that reaches the function through
// the gateway, signing with the given secret.
func (g *gateway) client(secret string) *dms.Client {
	return dms.New(dms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://" + lambdaAPIHost),
		Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: g},
	})
}

// signed sends a request signed by the SDK's signer through the gateway,
// for what the DMS client does not send: REST paths, query strings,
// malformed bodies.
func (g *gateway) signed(t *testing.T, method, pathAndQuery, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+lambdaAPIHost+pathAndQuery, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "AmazonDMSv20160101."+target)
	}
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "dms", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: g}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestLambdaAPI drives the Lambda build of the DMS API with the official
// client, through API Gateway's event format and a Runtime API, the way a
// deployment behind an HTTP API is reached.
func TestLambdaAPI(t *testing.T) {
	storetest.Empty(t, lambdaRedisDB)
	fn := startLambda(t, buildLambda(t), lambdaEnv())
	g := &gateway{fn: fn}
	c := g.client(testSecret)
	ctx := context.Background()

	t.Run("endpoint round trip", func(t *testing.T) {
		const password = "lambda-endpoint-password-4711"
		out, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{
			EndpointIdentifier: aws.String("lambda-ep"), EndpointType: types.ReplicationEndpointTypeValueSource,
			EngineName: aws.String("postgres"), ServerName: aws.String("db.internal"), Port: aws.Int32(5433),
			DatabaseName: aws.String("shop"), Username: aws.String("replicator"), Password: aws.String(password),
		})
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		arn := aws.ToString(out.Endpoint.EndpointArn)
		got, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{
			Filters: []types.Filter{{Name: aws.String("endpoint-arn"), Values: []string{arn}}},
		})
		if err != nil {
			t.Fatalf("DescribeEndpoints: %v", err)
		}
		if len(got.Endpoints) != 1 {
			t.Fatalf("DescribeEndpoints returned %d endpoints, want 1", len(got.Endpoints))
		}
		e := got.Endpoints[0]
		// DMS answers EndpointType in capitals (SOURCE) though requests
		// use lowercase, so it is compared without case.
		if aws.ToString(e.EndpointIdentifier) != "lambda-ep" || aws.ToString(e.ServerName) != "db.internal" || aws.ToInt32(e.Port) != 5433 ||
			aws.ToString(e.DatabaseName) != "shop" || aws.ToString(e.Username) != "replicator" || !strings.EqualFold(string(e.EndpointType), "source") {
			t.Fatalf("described endpoint differs from the created one: %+v", e)
		}
		if e.PostgreSQLSettings != nil && e.PostgreSQLSettings.Password != nil {
			t.Fatal("DescribeEndpoints returned the password in PostgreSQLSettings")
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, b := range g.bodies {
			if strings.Contains(b, password) {
				t.Fatalf("a response holds the endpoint password: %s", clip(b))
			}
		}
		if b, _ := os.ReadFile(fn.log); bytes.Contains(b, []byte(password)) {
			t.Fatal("the function's log holds the endpoint password")
		}
	})

	t.Run("wrong signature", func(t *testing.T) {
		_, err := g.client("wrong-secret").DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
		requireFault(t, err, "AccessDeniedFault")
		if s := httpStatus(err); s != http.StatusForbidden {
			t.Fatalf("status %d, want 403", s)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		_, err := c.CreateEndpoint(ctx, &dms.CreateEndpointInput{EndpointIdentifier: aws.String("bad id; drop"), EndpointType: types.ReplicationEndpointTypeValueSource, EngineName: aws.String("postgres")})
		requireFault(t, err, "InvalidParameterValueException")
		if s := httpStatus(err); s < 400 || s > 499 {
			t.Fatalf("status %d, want a 4xx", s)
		}
		status, body := g.signed(t, http.MethodPost, "/", "DescribeEndpoints", `{"Filters": [`)
		if status != http.StatusBadRequest || !strings.Contains(body, `"__type"`) {
			t.Fatalf("malformed JSON: status %d body %s", status, clip(body))
		}
	})

	t.Run("start is queued", func(t *testing.T) {
		f := newFixture(t, c, "lambda", "full-load")
		out, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")})
		if err != nil {
			t.Fatalf("StartReplication: %v", err)
		}
		if s := aws.ToString(out.Replication.Status); s != "initializing" {
			t.Fatalf("StartReplication answered status %q, want initializing", s)
		}
		st, err := store.Open(ctx, fmt.Sprintf("redis://127.0.0.1:6379/%d", lambdaRedisDB), "sluice")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		queued, err := st.Queued(ctx, store.QueueStarts)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(queued, f.configArn) {
			t.Fatalf("queued starts %q do not hold %s", queued, f.configArn)
		}
		// Nothing claims the queue here, so the replication waits where
		// the API left it.
		if s := aws.ToString(f.describe(t, c).Status); s != "initializing" {
			t.Fatalf("DescribeReplications: status %q, want initializing", s)
		}
		_, err = c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")})
		requireFault(t, err, "InvalidResourceStateFault")

		// The REST alias, with an escaped path and a query string: the
		// signature covers both, so they must reach the API unchanged.
		path := "/replications/" + strings.ReplaceAll(f.configArn, ":", "%3A") + "?detail=full&note=a%20b%2Fc"
		status, body := g.signed(t, http.MethodGet, path, "", "")
		if status != http.StatusOK || !strings.Contains(body, f.configArn) {
			t.Fatalf("GET %s: status %d body %s", path, status, clip(body))
		}
	})

	t.Run("logs are JSON", func(t *testing.T) {
		f, err := os.Open(fn.log)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		lines := 0
		for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
			var rec struct{ Level, Msg string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Level == "" || rec.Msg == "" {
				t.Fatalf("log line is not a slog JSON record: %s", sc.Text())
			}
		}
		if lines == 0 {
			t.Fatal("the function logged nothing, not even the replication it started")
		}
	})
}

// TestLambdaInitError: a function that cannot start says why through the
// Runtime API's init error, naming what to set, and exits without asking
// for an event.
func TestLambdaInitError(t *testing.T) {
	bin := buildLambda(t)
	cases := []struct {
		name string
		edit func(env map[string]string)
		says []string
	}{
		{"missing key pair", func(env map[string]string) { delete(env, "SLUICE_ACCESS_KEY_ID") }, []string{"SLUICE_ACCESS_KEY_ID", "must be set"}},
		// Port 1 on loopback refuses at once, like a Redis that is down.
		{"unreachable Redis", func(env map[string]string) { env["SLUICE_REDIS_URL"] = "redis://127.0.0.1:1/0" }, []string{"SLUICE_REDIS_URL", "127.0.0.1:1"}},
		{"bad master key", func(env map[string]string) { env["SLUICE_MASTER_KEY"] = "c2hvcnQ=" }, []string{"SLUICE_MASTER_KEY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := lambdaEnv()
			tc.edit(env)
			fn := startLambda(t, bin, env)
			var e runtimeError
			select {
			case e = <-fn.initErrors:
			case <-fn.exited:
				t.Fatalf("the function exited (%v) without reporting an init error", fn.exitErr)
			case <-time.After(20 * time.Second):
				t.Fatal("no init error within 20 s")
			}
			t.Logf("init error: %s", e.ErrorMessage)
			for _, s := range tc.says {
				if !strings.Contains(e.ErrorMessage, s) {
					t.Errorf("init error %q does not say %q", e.ErrorMessage, s)
				}
			}
			if e.ErrorType == "" || e.header != e.ErrorType {
				t.Errorf("errorType %q, Lambda-Runtime-Function-Error-Type %q", e.ErrorType, e.header)
			}
			select {
			case <-fn.exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the function did not exit after its init error")
			}
			if fn.exitErr == nil {
				t.Error("the function exited 0 after an init error")
			}
			if n := fn.asked.Load(); n != 0 {
				t.Errorf("the function asked for %d events after failing to start", n)
			}
		})
	}
}
