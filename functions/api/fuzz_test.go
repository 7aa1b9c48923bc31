package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/sigv4"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mapping"
	"github.com/sluicedb/sluice/runtime/task"
)

// The fuzz tests run against Redis database 10, which no other test uses.
// Each process keeps its keys under its own prefix there (see newFuzzServer).
const fuzzRedisURL = "redis://127.0.0.1:6379/10"

const (
	fuzzKeyID   = "AKIDFUZZFUZZFUZZ"
	fuzzSecret  = "fuzz-secret-access-key"
	fuzzRegion  = "us-east-1"
	fuzzAccount = "000000000000"
	fuzzHost    = "dms.us-east-1.sluice.test"
)

// fuzzNow is the clock of the handler, the verifier and the signer alike, so
// that an input always gives the same answer and a crasher reproduces.
var fuzzNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// The fixture every input runs against. The seeds name these ARNs, so the
// fuzzer starts from requests that reach the store rather than stop at
// ResourceNotFoundFault.
const (
	fxSource  = "arn:aws:dms:us-east-1:000000000000:endpoint:FUZZSOURCE"
	fxTarget  = "arn:aws:dms:us-east-1:000000000000:endpoint:FUZZTARGET"
	fxIdle    = "arn:aws:dms:us-east-1:000000000000:replication-config:FUZZIDLE"
	fxRunning = "arn:aws:dms:us-east-1:000000000000:replication-config:FUZZRUNNING"
)

const fxMappings = `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"all","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`

// faultStatus is every fault the API may answer with and its HTTP status.
// A fault outside this list is a bug even when its status is 4xx.
var faultStatus = map[string]int{
	"InvalidParameterValueException":       http.StatusBadRequest,
	"InvalidParameterCombinationException": http.StatusBadRequest,
	"ResourceNotFoundFault":                http.StatusBadRequest,
	"InvalidResourceStateFault":            http.StatusBadRequest,
	"ResourceAlreadyExistsFault":           http.StatusBadRequest,
	"SerializationException":               http.StatusBadRequest,
	"ThrottlingException":                  http.StatusBadRequest,
	"AccessDeniedFault":                    http.StatusForbidden,
	"RequestEntityTooLarge":                http.StatusRequestEntityTooLarge,
}

// fuzzServer is a Handler over a real store, with what the checks need to
// see the store's contents.
type fuzzServer struct {
	h    *Handler
	st   *store.Store
	logs bytes.Buffer // the handler's log of the current input
	// baseline is the store's contents with only the fixture in it; every
	// input starts from it.
	baseline map[string]string
	// dirty is set while an input runs: an input that fails its checks
	// stops before it restores the fixture, and the fuzzer runs it again
	// while it minimizes it.
	dirty bool
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	if testing.Short() {
		tb.Skip("the request fuzz test needs Redis; skipped in -short mode")
	}
	ctx := context.Background()
	// Fuzzing runs one worker process per CPU against the one database,
	// and `go test ./...` elsewhere in the tree may run the seeds at the
	// same time, so each process keeps its own keys. The database is not
	// flushed: that wiped the fixture of a fuzz run under way (every later
	// input then "changed the store"). Only what killed processes left
	// behind is swept.
	st, err := store.Open(ctx, fuzzRedisURL, fmt.Sprintf("fuzz%d", os.Getpid()))
	if err != nil {
		tb.Skipf("Redis is not reachable (run `make services`): %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	if err := sweep(ctx, st.Redis()); err != nil {
		tb.Fatalf("sweep Redis database 10: %v", err)
	}
	box, err := secrets.NewBox(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	s := &fuzzServer{st: st}
	s.h = &Handler{
		Store: st,
		Verifier: &sigv4.Verifier{AccessKeyID: fuzzKeyID, SecretAccessKey: fuzzSecret, Region: fuzzRegion, Service: "dms",
			Now: func() time.Time { return fuzzNow }},
		Box:    box,
		Region: fuzzRegion, Account: fuzzAccount,
		Control: Queue{Store: st},
		Log:     slog.New(slog.NewTextHandler(&s.logs, nil)),
		Now:     func() time.Time { return fuzzNow },
	}
	if err := s.reset(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.clear(context.Background()) })
	return s
}

// staleAfter is how long a fuzz key may sit unread before it counts as
// left behind: a live process reads all its keys after every input.
const staleAfter = 10 * time.Minute

// sweep deletes the keys of fuzz processes that were killed before their
// cleanup ran (the fuzzer kills its workers when the time is up).
func sweep(ctx context.Context, rdb redis.UniversalClient) error {
	keys, err := rdb.Keys(ctx, "{fuzz*}:*").Result() // every prefix newFuzzServer makes
	if err != nil {
		return err
	}
	for _, k := range keys {
		idle, err := rdb.ObjectIdleTime(ctx, k).Result()
		if err != nil {
			return nil // an LFU eviction policy does not track idle time; leave the keys
		}
		if idle > staleAfter {
			if err := rdb.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// pattern matches every key of this process's store.
func (s *fuzzServer) pattern() string { return s.st.Key("*", "*") }

func (s *fuzzServer) clear(ctx context.Context) error {
	keys, err := s.st.Redis().Keys(ctx, s.pattern()).Result()
	if err != nil || len(keys) == 0 {
		return err
	}
	return s.st.Redis().Del(ctx, keys...).Err()
}

// reset brings the store back to the fixture: two endpoints, a config that
// never ran and one that is running with table statistics.
func (s *fuzzServer) reset(ctx context.Context) error {
	if err := s.clear(ctx); err != nil {
		return err
	}
	for _, e := range []struct{ arn, id, typ string }{{fxSource, "fuzz-source", "SOURCE"}, {fxTarget, "fuzz-target", "TARGET"}} {
		rec := &store.EndpointRecord{Created: store.Time{Time: fuzzNow}}
		rec.Endpoint = store.Endpoint{
			EndpointIdentifier: e.id, EndpointType: e.typ, EndpointArn: e.arn, Status: "active",
			EngineName: "postgres", EngineDisplayName: "PostgreSQL",
			ServerName: "db.example", Port: 5432, DatabaseName: "app", Username: "sluice",
		}
		if err := s.st.CreateEndpoint(ctx, rec, []store.Tag{{Key: "team", Value: "data"}}); err != nil {
			return fmt.Errorf("fixture endpoint %s: %w", e.id, err)
		}
	}
	for _, c := range []struct {
		arn, id string
		status  store.Status
	}{{fxIdle, "fuzz-idle", store.StatusCreated}, {fxRunning, "fuzz-running", store.StatusRunning}} {
		at := store.At(fuzzNow)
		cfg := &store.Config{
			ReplicationConfigIdentifier: c.id, ReplicationConfigArn: c.arn,
			SourceEndpointArn: fxSource, TargetEndpointArn: fxTarget,
			ReplicationType: runtime.FullLoadAndCDC, ComputeConfig: &store.ComputeConfig{MaxCapacityUnits: 2},
			TableMappings: fxMappings, ReplicationConfigCreateTime: at, ReplicationConfigUpdateTime: at,
		}
		rep := &store.ReplicationRecord{Replication: replicationOf(cfg)}
		rep.Status = c.status
		rep.ReplicationCreateTime, rep.ReplicationUpdateTime = at, at
		if c.status == store.StatusRunning {
			rep.Runs = 1
			rep.StartReplicationType = store.StartFirst
			rep.ReplicationStats = &store.ReplicationStats{FreshStartDate: at, StartDate: at}
		}
		if err := s.st.CreateConfig(ctx, cfg, rep, nil); err != nil {
			return fmt.Errorf("fixture config %s: %w", c.id, err)
		}
	}
	stats := []store.TableStatistics{{SchemaName: "public", TableName: "orders", TableState: "Table completed", FullLoadRows: 10}}
	if err := s.st.PutTableStats(ctx, fxRunning, stats); err != nil {
		return err
	}
	var err error
	s.baseline, err = s.snapshot(ctx)
	return err
}

// snapshot returns every key of this process's store with its serialized
// value (DUMP), so two snapshots are equal only if nothing was written.
func (s *fuzzServer) snapshot(ctx context.Context) (map[string]string, error) {
	rdb := s.st.Redis()
	keys, err := rdb.Keys(ctx, s.pattern()).Result()
	if err != nil {
		return nil, err
	}
	cmds := make([]*redis.StringCmd, len(keys))
	pipe := rdb.Pipeline()
	for i, k := range keys {
		cmds[i] = pipe.Dump(ctx, k)
	}
	if len(keys) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("dump the store: %w", err)
		}
	}
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		out[k] = cmds[i].Val()
	}
	return out, nil
}

// diff names the keys that differ between two snapshots.
func diff(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		switch old, ok := before[k]; {
		case !ok:
			out = append(out, "added "+k)
		case old != v:
			out = append(out, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	sort.Strings(out)
	return out
}

// request builds the request an input stands for and signs it as the AWS
// SDK does. target is either an X-Amz-Target value for a JSON 1.1 request,
// or "METHOD /path" for the REST aliases. ok is false for inputs no HTTP
// client could send.
func (s *fuzzServer) request(target string, body []byte) (r *http.Request, rest bool, ok bool) {
	method, path, isREST := strings.Cut(target, " ")
	isREST = isREST && strings.HasPrefix(path, "/") && method != "" && strings.ToUpper(method) == method
	var err error
	if isREST {
		r, err = http.NewRequest(method, "https://"+fuzzHost+path, bytes.NewReader(body))
		// A client sends what it has escaped; a path that does not survive
		// the round trip would be a different request on the wire.
		if err != nil || strings.ContainsAny(path, " #\t") || !validHeader(path) {
			return nil, true, false
		}
	} else {
		// On the wire a header value has no control characters and the
		// server trims the spaces and tabs around it.
		if !validHeader(target) {
			return nil, false, false
		}
		r, err = http.NewRequest(http.MethodPost, "https://"+fuzzHost+"/", bytes.NewReader(body))
		if err != nil {
			return nil, false, false
		}
		r.Header.Set("X-Amz-Target", strings.Trim(target, " \t"))
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: fuzzKeyID, SecretAccessKey: fuzzSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "dms", fuzzRegion, fuzzNow); err != nil {
		return nil, isREST, false
	}
	return r, isREST, true
}

// validHeader reports whether v can be sent as an HTTP header value.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzRequest sends arbitrary operations and bodies, signed, to a Handler
// over a real store. Whatever comes in, the answer is a 2xx or a DMS fault
// (never a 5xx), the body is JSON, a failed call writes nothing, and a
// successful one leaves the store consistent.
func FuzzRequest(f *testing.F) {
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, target string, body []byte) {
		ctx := context.Background()
		r, rest, ok := s.request(target, body)
		if !ok {
			t.Skip("no HTTP client can send this request")
		}
		if s.dirty {
			if err := s.reset(ctx); err != nil {
				t.Fatal(err)
			}
		}
		s.dirty = true
		s.logs.Reset()
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		status, out := w.Code, w.Body.Bytes()
		t.Logf("%s %q → %d %s", target, clip(string(body)), status, clip(string(out)))

		if status >= 500 {
			t.Fatalf("status %d: %s\nserver log:\n%s", status, out, s.logs.String())
		}
		if !json.Valid(out) {
			t.Fatalf("status %d with a body that is not JSON: %q", status, out)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type %q, want application/x-amz-json-1.1", ct)
		}
		after, err := s.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if status >= 400 {
			code := checkFaultBody(t, w)
			checkFaultChoice(t, target, body, rest, code)
			// The package promises a bad request leaves no trace.
			if d := diff(s.baseline, after); len(d) > 0 {
				t.Fatalf("%s failed with %d but changed the store: %v", target, status, d)
			}
			s.dirty = false
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, out)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("a successful answer is not a JSON object: %s", out)
		}
		if !rest {
			checkListing(t, target, body, obj)
		}
		if d := diff(s.baseline, after); len(d) > 0 {
			if err := s.consistent(ctx); err != nil {
				t.Fatalf("%s succeeded but left the store inconsistent (%v): %v", target, d, err)
			}
			if err := s.reset(ctx); err != nil {
				t.Fatal(err)
			}
		}
		s.dirty = false
	})
}

// checkFaultBody checks that a 4xx carries a fault DMS clients understand
// and returns its code.
func checkFaultBody(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var f struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil {
		t.Fatalf("status %d with a body that is not a fault: %s", w.Code, w.Body)
	}
	switch want, known := faultStatus[f.Type]; {
	case f.Type == "UnknownOperationException":
		if w.Code != http.StatusBadRequest && w.Code != http.StatusNotFound {
			t.Errorf("UnknownOperationException with status %d", w.Code)
		}
	case !known:
		t.Errorf("status %d with fault %q, which is not one the API documents: %s", w.Code, f.Type, w.Body)
	case want != w.Code:
		t.Errorf("fault %s with status %d, want %d", f.Type, w.Code, want)
	}
	if strings.TrimSpace(f.Message) == "" {
		t.Errorf("fault %s without a message", f.Type)
	}
	if h := w.Header().Get("X-Amzn-ErrorType"); h != f.Type {
		t.Errorf("X-Amzn-ErrorType %q, __type %q", h, f.Type)
	}
	return f.Type
}

// checkFaultChoice checks the fault against what is wrong with the request
// where that is plain from the request alone.
func checkFaultChoice(t *testing.T, target string, body []byte, rest bool, code string) {
	t.Helper()
	if code == "AccessDeniedFault" {
		// Every request is signed with the server's key, so a refusal means
		// the verifier and the SDK's signer disagree about the request.
		t.Errorf("a request signed with the server's key was refused")
		return
	}
	if rest {
		return
	}
	name, prefixed := strings.CutPrefix(strings.Trim(target, " \t"), targetPrefix)
	_, known := operations[name]
	known = known && prefixed
	switch {
	case !known && code != "UnknownOperationException":
		t.Errorf("X-Amz-Target %q is no operation, but the fault is %s", target, code)
	case known && code == "UnknownOperationException":
		t.Errorf("X-Amz-Target %q is an operation, but the fault is UnknownOperationException", target)
	case known && len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) && code != "SerializationException":
		t.Errorf("the body is not JSON, but the fault is %s", code)
	case known:
		checkARNFault(t, name, body, code)
	}
}

// arnMembers are the operations whose only required member is an ARN,
// and its name: given just that member, the fault says what is wrong with
// the ARN.
var arnMembers = map[string]string{
	"StopReplication":                    "ReplicationConfigArn",
	"DeleteReplicationConfig":            "ReplicationConfigArn",
	"ModifyReplicationConfig":            "ReplicationConfigArn",
	"DescribeReplicationTableStatistics": "ReplicationConfigArn",
	"DeleteEndpoint":                     "EndpointArn",
	"ModifyEndpoint":                     "EndpointArn",
	"AddTagsToResource":                  "ResourceArn",
	"ListTagsForResource":                "ResourceArn",
	"RemoveTagsFromResource":             "ResourceArn",
}

// checkARNFault checks, for a body that holds nothing but the ARN an
// operation requires, that a malformed ARN is refused as an invalid value
// and a well-formed one never is: naming no resource is a
// ResourceNotFoundFault, as in DMS.
func checkARNFault(t *testing.T, op string, body []byte, code string) {
	t.Helper()
	member, ok := arnMembers[op]
	if !ok {
		return
	}
	var in map[string]json.RawMessage
	if json.Unmarshal(body, &in) != nil || len(in) != 1 {
		return
	}
	var arn string
	if json.Unmarshal(in[member], &arn) != nil {
		return // another member, or not a string
	}
	switch well := wellFormedARN(arn); {
	case !well && code != "InvalidParameterValueException":
		t.Errorf("%s with the malformed %s %q: fault %s, want InvalidParameterValueException", op, member, arn, code)
	case well && code == "InvalidParameterValueException":
		t.Errorf("%s with the well-formed %s %q: InvalidParameterValueException; a well-formed ARN is found or not (ResourceNotFoundFault)", op, member, arn)
	}
}

// listKeys are the Describe* operations and the member that lists what
// they found.
var listKeys = map[string]string{
	"DescribeEndpoints":                  "Endpoints",
	"DescribeReplicationConfigs":         "ReplicationConfigs",
	"DescribeReplications":               "Replications",
	"DescribeReplicationTableStatistics": "ReplicationTableStatistics",
}

// checkListing checks a successful Describe* answer: filters that match
// nothing are a ResourceNotFoundFault, as in DMS, so a first page for a
// request with filters lists something.
func checkListing(t *testing.T, target string, body []byte, out map[string]json.RawMessage) {
	t.Helper()
	name, _ := strings.CutPrefix(strings.Trim(target, " \t"), targetPrefix)
	key, ok := listKeys[name]
	if !ok {
		return
	}
	var in struct {
		Filters []Filter
		Marker  string
	}
	if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &in) != nil {
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(out[key], &items); err != nil {
		t.Fatalf("%s answered %s that is not a list: %s", name, key, out[key])
	}
	if len(in.Filters) > 0 && in.Marker == "" && len(items) == 0 {
		t.Errorf("%s with filters %+v that match nothing answered an empty list; DMS answers ResourceNotFoundFault", name, in.Filters)
	}
}

// consistent checks what a successful call leaves behind: every record
// valid, and every index (identifiers, endpoint references, sets, tags)
// pointing at records that exist and back. The index key kinds mirror
// infra/store's layout.
func (s *fuzzServer) consistent(ctx context.Context) error {
	rdb := s.st.Redis()
	keys, err := rdb.Keys(ctx, s.pattern()).Result()
	if err != nil {
		return err
	}
	byKind := map[string][]string{}
	for _, k := range keys {
		kind, id, _ := strings.Cut(strings.TrimPrefix(k, strings.TrimSuffix(s.st.Key("", ""), ":")), ":")
		byKind[kind] = append(byKind[kind], id)
	}
	eps, err := s.st.Endpoints(ctx)
	if err != nil {
		return err
	}
	cfgs, err := s.st.Configs(ctx)
	if err != nil {
		return err
	}
	// A deleted config's source drop waits for the server: the config
	// is gone.
	pending, err := s.st.SourceDrops(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, c := range cfgs {
		live[c.ReplicationConfigArn] = true
	}
	for _, d := range pending {
		if live[d.ConfigArn] {
			return fmt.Errorf("config %s is live and has a source drop pending", d.ConfigArn)
		}
	}
	reps, err := s.st.Replications(ctx)
	if err != nil {
		return err
	}
	epByARN := map[string]*store.EndpointRecord{}
	for _, e := range eps {
		epByARN[e.EndpointArn] = e
		if err := identifier("EndpointIdentifier", e.EndpointIdentifier); err != nil {
			return fmt.Errorf("endpoint %s: %w", e.EndpointArn, err)
		}
		if e.EndpointType != "SOURCE" && e.EndpointType != "TARGET" {
			return fmt.Errorf("endpoint %s has type %q", e.EndpointArn, e.EndpointType)
		}
		if _, err := task.EngineOf(e.EngineName); err != nil {
			return fmt.Errorf("endpoint %s has engine %q", e.EndpointArn, e.EngineName)
		}
		if got, _ := rdb.Get(ctx, s.st.Key("epid", e.EndpointIdentifier)).Result(); got != e.EndpointArn {
			return fmt.Errorf("identifier %s points at %q, not at endpoint %s", e.EndpointIdentifier, got, e.EndpointArn)
		}
	}
	cfgByARN := map[string]*store.Config{}
	for _, c := range cfgs {
		cfgByARN[c.ReplicationConfigArn] = c
		if err := identifier("ReplicationConfigIdentifier", c.ReplicationConfigIdentifier); err != nil {
			return fmt.Errorf("config %s: %w", c.ReplicationConfigArn, err)
		}
		if err := errors.Join(checkType(c.ReplicationType), checkCompute(c.ComputeConfig), checkDocuments(c.ReplicationType, c.TableMappings, c.ReplicationSettings)); err != nil {
			return fmt.Errorf("config %s was stored but cannot run: %w", c.ReplicationConfigIdentifier, err)
		}
		if got, _ := rdb.Get(ctx, s.st.Key("cfgid", c.ReplicationConfigIdentifier)).Result(); got != c.ReplicationConfigArn {
			return fmt.Errorf("identifier %s points at %q, not at config %s", c.ReplicationConfigIdentifier, got, c.ReplicationConfigArn)
		}
		for _, ep := range []string{c.SourceEndpointArn, c.TargetEndpointArn} {
			if epByARN[ep] == nil {
				return fmt.Errorf("config %s uses endpoint %s, which does not exist", c.ReplicationConfigIdentifier, ep)
			}
			if in, _ := rdb.SIsMember(ctx, s.st.Key("epref", ep), c.ReplicationConfigArn).Result(); !in {
				return fmt.Errorf("config %s uses endpoint %s, which does not know it", c.ReplicationConfigIdentifier, ep)
			}
		}
	}
	// Tags reach the store through the create operations too; whichever
	// way they came, they obey the rule AddTagsToResource enforces.
	for arn := range mergeKeys(epByARN, cfgByARN) {
		tags, err := s.st.Tags(ctx, arn)
		if err != nil {
			return err
		}
		if err := checkTags(tags); err != nil {
			return fmt.Errorf("%s has a tag the API refuses: %w", arn, err)
		}
	}
	if len(reps) != len(cfgs) {
		return fmt.Errorf("%d replications for %d configs", len(reps), len(cfgs))
	}
	for _, r := range reps {
		c := cfgByARN[r.ReplicationConfigArn]
		if c == nil {
			return fmt.Errorf("replication %s has no config", r.ReplicationConfigArn)
		}
		if r.ReplicationConfigIdentifier != c.ReplicationConfigIdentifier || r.SourceEndpointArn != c.SourceEndpointArn ||
			r.TargetEndpointArn != c.TargetEndpointArn || r.ReplicationType != c.ReplicationType {
			return fmt.Errorf("replication %s disagrees with its config", r.ReplicationConfigArn)
		}
	}
	// Every key belongs to a live record: no index or record outlives the
	// resource, and no record exists outside the sets the listings read.
	for kind, ids := range byKind {
		for _, id := range ids {
			var ok bool
			switch kind {
			case "ep", "epref":
				ok = epByARN[id] != nil
			case "cfg", "rep", "tstats":
				ok = cfgByARN[id] != nil
			case "tags":
				ok = epByARN[id] != nil || cfgByARN[id] != nil
			case "epid", "cfgid", "eps", "cfgs", "queue", "drops":
				ok = true // checked above, from the records' side, or below
			}
			if !ok {
				return fmt.Errorf("key %s:%s belongs to no resource", kind, id)
			}
		}
	}
	if n := len(byKind["epid"]); n != len(eps) {
		return fmt.Errorf("%d endpoint identifiers for %d endpoints", n, len(eps))
	}
	if n := len(byKind["cfgid"]); n != len(cfgs) {
		return fmt.Errorf("%d config identifiers for %d configs", n, len(cfgs))
	}
	for _, ep := range byKind["epref"] {
		users, err := rdb.SMembers(ctx, s.st.Key("epref", ep)).Result()
		if err != nil {
			return err
		}
		for _, u := range users {
			if c := cfgByARN[u]; c == nil || (c.SourceEndpointArn != ep && c.TargetEndpointArn != ep) {
				return fmt.Errorf("endpoint %s is held by %s, which does not use it", ep, u)
			}
		}
	}
	return nil
}

// mergeKeys returns the keys of two maps.
func mergeKeys[A, B any](a map[string]A, b map[string]B) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// TestRequestTooLarge covers the body cap, which the fuzzer's inputs (at
// most a few hundred kilobytes) never reach, over a real TCP connection. A
// client that sends its whole request before it reads (curl, botocore)
// reads the 413 fault for a body three times the cap, not a connection
// reset, and the server closes the connection after the answer.
func TestRequestTooLarge(t *testing.T) {
	h := &Handler{Verifier: &sigv4.Verifier{}, Region: fuzzRegion, Account: fuzzAccount, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, size := range []int{maxBody + 1, 12 << 20} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(bytes.Repeat([]byte(" "), size)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", targetPrefix+"CreateEndpoint")
		if err := r.Write(conn); err != nil {
			t.Fatalf("send a body of %d bytes: %v; the server must read it before it answers", size, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), r)
		if err != nil {
			t.Fatalf("read the answer to a body of %d bytes: %v", size, err)
		}
		w := httptest.NewRecorder()
		w.Code = resp.StatusCode
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		_, err = io.Copy(w.Body, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read the answer to a body of %d bytes: %v", size, err)
		}
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body of %d bytes: status %d, want 413: %s", size, w.Code, w.Body)
		}
		if code := checkFaultBody(t, w); code != "RequestEntityTooLarge" {
			t.Fatalf("a body of %d bytes: fault %s", size, code)
		}
		if !resp.Close {
			t.Errorf("a body of %d bytes: the answer does not close the connection", size)
		}
	}
}

// FuzzValidators feeds the pure checks a string (identifier, ARN, marker,
// position, replication type), a document (table mappings, settings,
// filters, tags, compute config, request bodies) and a number (MaxRecords).
// None may panic; each error is a fault with a message; and what a check
// accepts obeys the rule it documents, restated here independently.
func FuzzValidators(f *testing.F) {
	h := &Handler{Region: fuzzRegion, Account: fuzzAccount}
	f.Fuzz(func(t *testing.T, s string, doc []byte, n int) {
		fuzzIdentifier(t, s)
		fuzzARN(t, h, s)
		fuzzPage(t, s, len(doc), n)
		fuzzFilters(t, doc)
		fuzzDocuments(t, s, doc)
		fuzzDecode(t, doc)
		fuzzSmall(t, s, doc)
	})
}

// faultCode checks that err is a fault with a message and returns its code.
func faultCode(t *testing.T, what string, err error) string {
	t.Helper()
	var f *fault
	if !errors.As(err, &f) {
		t.Fatalf("%s: %T %v is not a fault: it would answer 500", what, err, err)
	}
	if strings.TrimSpace(f.msg) == "" {
		t.Fatalf("%s: fault %s without a message", what, f.code)
	}
	return f.code
}

func fuzzIdentifier(t *testing.T, s string) {
	err := identifier("Id", s)
	valid := len(s) >= 1 && len(s) <= 255 && isLetter(s[0]) && s[len(s)-1] != '-' && !strings.Contains(s, "--")
	for i := 0; valid && i < len(s); i++ {
		valid = isLetter(s[i]) || '0' <= s[i] && s[i] <= '9' || s[i] == '-'
	}
	switch {
	case err == nil && !valid:
		t.Fatalf("identifier %q accepted, but DMS identifiers are 1-255 ASCII letters, digits and single hyphens, starting with a letter and not ending with a hyphen", s)
	case err != nil && valid:
		t.Fatalf("identifier %q refused: %v", s, err)
	case err != nil:
		if code := faultCode(t, "identifier", err); code != "InvalidParameterValueException" {
			t.Fatalf("identifier fault %s", code)
		}
	}
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func fuzzARN(t *testing.T, h *Handler, s string) {
	well := wellFormedARN(s)
	for _, want := range []string{"", kindEndpoint, kindConfig} {
		got, err := h.checkARN("Arn", s, want)
		if err != nil {
			// Only a malformed ARN is an invalid value; a well-formed one
			// that cannot name a resource here is not found.
			switch code := faultCode(t, "checkARN", err); {
			case !well && code != "InvalidParameterValueException":
				t.Fatalf("checkARN(%q) of a malformed ARN: fault %s, want InvalidParameterValueException", s, code)
			case well && code != "ResourceNotFoundFault":
				t.Fatalf("checkARN(%q) of a well-formed ARN: fault %s, want ResourceNotFoundFault", s, code)
			}
			// The value is quoted back clipped, so a huge ARN does not make
			// a huge answer.
			if len(err.Error()) > 1000 {
				t.Fatalf("checkARN message of %d bytes", len(err.Error()))
			}
			continue
		}
		if !well {
			t.Fatalf("checkARN accepted the malformed %q", s)
		}
		if want != "" && got != want {
			t.Fatalf("checkARN(%q, %q) accepted a %s", s, want, got)
		}
		if _, ok := strings.CutPrefix(s, "arn:aws:dms:"+fuzzRegion+":"+fuzzAccount+":"+got+":"); !ok || (got != kindEndpoint && got != kindConfig) {
			t.Fatalf("checkARN accepted %q as a %s of this server", s, got)
		}
	}
}

// wellFormedARN restates the shape of a DMS ARN without a regular
// expression: arn:<partition>:dms:<region>:<account>:<type>:<ID>, the
// partition aws or aws-<letters>..., the region lower-case letters, digits
// and hyphens, the account 12 digits, the type lower-case words joined by
// single hyphens, and the ID 1 to 255 letters, digits, '.', '_' and '-',
// starting with a letter or digit.
func wellFormedARN(s string) bool {
	p := strings.Split(s, ":")
	if len(p) != 7 || p[0] != "arn" || p[2] != "dms" {
		return false
	}
	lower := func(c byte) bool { return 'a' <= c && c <= 'z' }
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	words := func(s string) bool { // lower-case words joined by single hyphens
		for _, w := range strings.Split(s, "-") {
			if w == "" || strings.IndexFunc(w, func(r rune) bool { return r > 0x7f || !lower(byte(r)) }) >= 0 {
				return false
			}
		}
		return true
	}
	partition, region, account, typ, id := p[1], p[3], p[4], p[5], p[6]
	if partition != "aws" && !(strings.HasPrefix(partition, "aws-") && words(partition)) {
		return false
	}
	if region == "" || len(account) != 12 || !words(typ) || id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(region); i++ {
		if c := region[i]; !lower(c) && !digit(c) && c != '-' {
			return false
		}
	}
	for i := 0; i < len(account); i++ {
		if !digit(account[i]) {
			return false
		}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isLetter(c) && !digit(c) && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// fuzzPage pages through count items from marker with MaxRecords n (absent
// when n is 0).
func fuzzPage(t *testing.T, marker string, count, n int) {
	count %= 251
	items := make([]string, count)
	for i := range items {
		items[i] = fmt.Sprintf("arn:item:%03d", i)
	}
	key := func(s string) string { return s }
	var maxRecords *int
	size := 100
	if n != 0 {
		maxRecords, size = &n, n
	}
	got, next, err := page(items, key, marker, maxRecords)
	rangeOK := maxRecords == nil || 20 <= n && n <= 100
	after, markerErr := base64.RawURLEncoding.DecodeString(marker)
	if err != nil {
		if code := faultCode(t, "page", err); code != "InvalidParameterValueException" {
			t.Fatalf("page fault %s", code)
		}
		if rangeOK && (marker == "" || markerErr == nil) {
			t.Fatalf("page refused MaxRecords %d, marker %q: %v", n, marker, err)
		}
		return
	}
	if !rangeOK || marker != "" && markerErr != nil {
		t.Fatalf("page accepted MaxRecords %d, marker %q", n, marker)
	}
	start := 0
	if i := slices.Index(items, string(after)); marker != "" && i >= 0 {
		start = i + 1
	}
	end := min(start+size, count)
	if !slices.Equal(got, items[start:end]) {
		t.Fatalf("marker %q, MaxRecords %d: page %v, want items %d to %d", marker, size, got, start, end)
	}
	if (next != "") != (end < count) {
		t.Fatalf("page ending at %d of %d has Marker %q", end, count, next)
	}
	// Following the markers from the start visits every item once, in
	// order.
	var all []string
	for m, pages := "", 0; ; pages++ {
		if pages > count+1 {
			t.Fatalf("paging does not end")
		}
		p, nx, err := page(items, key, m, maxRecords)
		if err != nil {
			t.Fatalf("the Marker %q the previous page returned is refused: %v", m, err)
		}
		all = append(all, p...)
		if nx == "" {
			break
		}
		m = nx
	}
	if !slices.Equal(all, items) {
		t.Fatalf("paging by %d visited %d of %d items", size, len(all), count)
	}
}

func fuzzFilters(t *testing.T, doc []byte) {
	var fs []Filter
	if json.Unmarshal(doc, &fs) != nil {
		return
	}
	allowed := []string{"endpoint-arn", "endpoint-type", "endpoint-id", "engine-name"}
	match, err := filters(fs, allowed...)
	if err != nil {
		if code := faultCode(t, "filters", err); code != "InvalidParameterValueException" {
			t.Fatalf("filters fault %s", code)
		}
		if !slices.ContainsFunc(fs, func(f Filter) bool { return !slices.Contains(allowed, f.Name) || len(f.Values) == 0 }) {
			t.Fatalf("filters %+v refused: %v", fs, err)
		}
		return
	}
	for _, f := range fs {
		if !slices.Contains(allowed, f.Name) || len(f.Values) == 0 {
			t.Fatalf("filter %+v accepted", f)
		}
		for _, v := range f.Values {
			if !match(f.Name, v) {
				t.Fatalf("filter %s does not match its own value %q", f.Name, v)
			}
		}
	}
	for _, name := range allowed {
		filtered := slices.ContainsFunc(fs, func(f Filter) bool { return f.Name == name })
		if !filtered && !match(name, "anything") {
			t.Fatalf("no filter names %s, yet it excludes a value", name)
		}
		const stranger = "\x00 listed by no filter"
		listed := slices.ContainsFunc(fs, func(f Filter) bool {
			return f.Name == name && slices.ContainsFunc(f.Values, func(v string) bool { return strings.EqualFold(v, stranger) })
		})
		if filtered && !listed && match(name, stranger) {
			t.Fatalf("filter %s matches a value it does not list", name)
		}
	}
}

// fuzzDocuments parses doc as table mappings and as replication settings,
// directly and through checkDocuments as CreateReplicationConfig does; s
// serves as a table name for the parsed rules.
func fuzzDocuments(t *testing.T, s string, doc []byte) {
	rules, err := mapping.Parse(doc)
	if err != nil {
		if !errors.Is(err, mapping.ErrInvalid) || strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("mapping.Parse error %q does not wrap ErrInvalid", err)
		}
	} else {
		_ = rules.Selected(s, s)
		_ = rules.Selected("public", "orders")
		if m := rules.Map(s, s, []string{s, "id"}, ""); len(m.Columns) != 2 {
			t.Fatalf("Map of two columns returned %d", len(m.Columns))
		}
	}
	set, serr := runtime.ParseSettings(doc)
	if serr != nil {
		if strings.TrimSpace(serr.Error()) == "" {
			t.Fatal("ParseSettings error without a message")
		}
	} else {
		fl, c := set.FullLoadSettings, set.ChangeProcessingTuning
		switch {
		case !slices.Contains([]string{runtime.PrepDropAndCreate, runtime.PrepTruncateBeforeLoad, runtime.PrepDoNothing}, fl.TargetTablePrepMode),
			fl.MaxFullLoadSubTasks < 1 || fl.MaxFullLoadSubTasks > 49,
			c.BatchApplyTimeoutMax < 1 || c.BatchApplyMemoryLimit < 1 || c.MemoryLimitTotal < 1,
			set.SluiceSettings.ChunkPages < 1 || set.SluiceSettings.CreateSecondaryIndexes == nil,
			set.ControlTablesSettings.ControlSchema == "":
			t.Fatalf("ParseSettings accepted %q as %+v", clip(string(doc)), set)
		}
	}
	for _, c := range []struct {
		mappings, settings, member string
		ok                         bool
	}{
		{string(doc), "", "TableMappings", len(doc) > 0 && err == nil},
		{fxMappings, string(doc), "ReplicationSettings", serr == nil},
	} {
		err := checkDocuments(runtime.FullLoad, c.mappings, c.settings)
		var f *fault
		switch {
		case (err == nil) != c.ok:
			t.Fatalf("checkDocuments(%q, %q) = %v, but the parsers say ok = %v", clip(c.mappings), clip(c.settings), err, c.ok)
		case err == nil:
		case faultCode(t, "checkDocuments", err) != "InvalidParameterValueException":
			t.Fatalf("checkDocuments fault %v", err)
		case errors.As(err, &f) && !strings.HasPrefix(f.msg, c.member):
			t.Fatalf("checkDocuments message %q does not name %s", f.msg, c.member)
		}
	}
}

// fuzzDecode decodes doc as the bodies of the operations.
func fuzzDecode(t *testing.T, doc []byte) {
	for _, v := range []any{&endpointInput{}, &configInput{}, &startInput{}, &struct {
		Filters    []Filter
		MaxRecords *int
		Marker     string
	}{}, &struct {
		ReplicationConfigArn string
		TablesToReload       []struct{ SchemaName, TableName string }
	}{}} {
		err := decode(doc, v)
		if err == nil {
			if !json.Valid(doc) {
				t.Fatalf("decode accepted %q into %T, which is not JSON", clip(string(doc)), v)
			}
			continue
		}
		if code := faultCode(t, "decode", err); code != "SerializationException" {
			t.Fatalf("decode fault %s", code)
		}
	}
}

// fuzzSmall covers the one-line checks: replication type, positions,
// compute config and tags.
func fuzzSmall(t *testing.T, s string, doc []byte) {
	if err := checkType(s); (err == nil) != slices.Contains([]string{runtime.FullLoad, runtime.CDC, runtime.FullLoadAndCDC}, s) {
		t.Fatalf("checkType(%q) = %v", s, err)
	} else if err != nil {
		faultCode(t, "checkType", err)
	}
	if p, err := runtime.ParsePosition(s); err == nil {
		// A position is given back as a checkpoint, which must read back
		// as the same position.
		q, err := runtime.ParsePosition(runtime.Checkpoint(p))
		if err != nil || q.Compare(p) != 0 {
			t.Fatalf("position %q reads back from %s as %v, %v", s, runtime.Checkpoint(p), q, err)
		}
	} else if err.Error() == "" {
		t.Fatal("ParsePosition error without a message")
	}
	if _, err := runtime.ParseStopPosition(s); err != nil && err.Error() == "" {
		t.Fatal("ParseStopPosition error without a message")
	}
	var c store.ComputeConfig
	if json.Unmarshal(doc, &c) == nil {
		if err := checkCompute(&c); err == nil {
			if !slices.Contains(capacityUnits, c.MaxCapacityUnits) || c.MinCapacityUnits != 0 && (!slices.Contains(capacityUnits, c.MinCapacityUnits) || c.MinCapacityUnits > c.MaxCapacityUnits) {
				t.Fatalf("checkCompute accepted %+v", c)
			}
		} else {
			faultCode(t, "checkCompute", err)
		}
	}
	var tags []store.Tag
	if json.Unmarshal(doc, &tags) == nil {
		if err := checkTags(tags); err == nil {
			for _, tag := range tags {
				if tag.Key == "" || len(tag.Key) > 128 || len(tag.Value) > 256 {
					t.Fatalf("checkTags accepted %+v", tag)
				}
			}
		} else {
			faultCode(t, "checkTags", err)
		}
	}
}
