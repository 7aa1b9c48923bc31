package test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// arnBase is the start of every ARN of the test server.
const arnBase = "arn:aws:dms:us-east-1:000000000000:"

// TestAPIFaultsUnknownARN: every operation that takes an ARN answers a
// well-formed ARN that names no resource with ResourceNotFoundFault, as
// DMS does, and only a malformed ARN with InvalidParameterValueException;
// none of them changes anything.
func TestAPIFaultsUnknownARN(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "apifaults", "full-load-and-cdc")
	configID := f.configArn[strings.LastIndexByte(f.configArn, ':')+1:]

	// The well-formed ARNs that name nothing, by the kind an operation
	// wants ("" for any).
	wellFormed := func(kind string) map[string]string {
		k := kind
		if k == "" {
			k = "replication-config"
		}
		arns := map[string]string{
			"an ID nobody has":                 arnBase + k + ":" + strings.Repeat("Z", 26),
			"a lower-case ID":                  arnBase + k + ":" + strings.ToLower(configID),
			"the identifier instead of the ID": arnBase + k + ":" + f.configID,
			"a replication task":               arnBase + "task:" + configID,
			"another region":                   "arn:aws:dms:eu-west-1:000000000000:" + k + ":" + configID,
			"another account":                  "arn:aws:dms:us-east-1:123456789012:" + k + ":" + configID,
			"another partition":                "arn:aws-cn:dms:cn-north-1:000000000000:" + k + ":" + configID,
		}
		switch kind {
		case "replication-config":
			arns["an endpoint's"] = f.srcArn
		case "endpoint":
			arns["a replication config's"] = f.configArn
		}
		return arns
	}
	malformed := map[string]string{
		"not an ARN":        "not-an-arn",
		"no ID":             arnBase + "replication-config:",
		"a short account":   "arn:aws:dms:us-east-1:0000:replication-config:" + configID,
		"another service":   "arn:aws:s3:::bucket",
		"a trailing space":  f.configArn + " ",
		"an ID with a path": f.configArn + "/x",
	}

	tables := []types.TableToReload{{SchemaName: aws.String("public"), TableName: aws.String("t")}}
	ops := []struct {
		name, kind string // kind "" takes any resource
		call       func(arn string) error
	}{
		{"StartReplication", "replication-config", func(arn string) error {
			_, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: &arn, StartReplicationType: aws.String("start-replication")})
			return err
		}},
		{"StopReplication", "replication-config", func(arn string) error {
			_, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: &arn})
			return err
		}},
		{"DescribeReplicationTableStatistics", "replication-config", func(arn string) error {
			_, err := c.DescribeReplicationTableStatistics(ctx, &dms.DescribeReplicationTableStatisticsInput{ReplicationConfigArn: &arn})
			return err
		}},
		{"ReloadReplicationTables", "replication-config", func(arn string) error {
			_, err := c.ReloadReplicationTables(ctx, &dms.ReloadReplicationTablesInput{ReplicationConfigArn: &arn, TablesToReload: tables})
			return err
		}},
		{"ModifyReplicationConfig", "replication-config", func(arn string) error {
			_, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{ReplicationConfigArn: &arn, ReplicationType: types.MigrationTypeValueCdc})
			return err
		}},
		{"DeleteReplicationConfig", "replication-config", func(arn string) error {
			_, err := c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: &arn})
			return err
		}},
		{"CreateReplicationConfig", "endpoint", func(arn string) error {
			_, err := c.CreateReplicationConfig(ctx, &dms.CreateReplicationConfigInput{
				ReplicationConfigIdentifier: aws.String("apifaults-new"), SourceEndpointArn: &arn, TargetEndpointArn: aws.String(f.dstArn),
				ReplicationType: types.MigrationTypeValueFullLoad, ComputeConfig: &types.ComputeConfig{MaxCapacityUnits: aws.Int32(2)},
				TableMappings: aws.String(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"}]}`),
			})
			return err
		}},
		{"ModifyEndpoint", "endpoint", func(arn string) error {
			_, err := c.ModifyEndpoint(ctx, &dms.ModifyEndpointInput{EndpointArn: &arn, Port: aws.Int32(5433)})
			return err
		}},
		{"DeleteEndpoint", "endpoint", func(arn string) error {
			_, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: &arn})
			return err
		}},
		{"AddTagsToResource", "", func(arn string) error {
			_, err := c.AddTagsToResource(ctx, &dms.AddTagsToResourceInput{ResourceArn: &arn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}},
		{"ListTagsForResource", "", func(arn string) error {
			_, err := c.ListTagsForResource(ctx, &dms.ListTagsForResourceInput{ResourceArn: &arn})
			return err
		}},
		{"ListTagsForResource ResourceArnList", "", func(arn string) error {
			_, err := c.ListTagsForResource(ctx, &dms.ListTagsForResourceInput{ResourceArnList: []string{f.srcArn, arn}})
			return err
		}},
		{"RemoveTagsFromResource", "", func(arn string) error {
			_, err := c.RemoveTagsFromResource(ctx, &dms.RemoveTagsFromResourceInput{ResourceArn: &arn, TagKeys: []string{"k"}})
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for what, arn := range wellFormed(op.kind) {
				err := op.call(arn)
				if got := faultCode(err); got != "ResourceNotFoundFault" {
					t.Errorf("%s (%s): %q, want ResourceNotFoundFault: %v", what, arn, got, err)
				}
			}
			for what, arn := range malformed {
				err := op.call(arn)
				if got := faultCode(err); got != "InvalidParameterValueException" {
					t.Errorf("%s (%q): %q, want InvalidParameterValueException: %v", what, arn, got, err)
				}
			}
		})
	}

	// Nothing above left a trace.
	if r := f.describe(t, c); aws.ToString(r.Status) != "created" || r.ReplicationType != types.MigrationTypeValueFullLoadAndCdc {
		t.Fatalf("the replication after the refused requests: status %s, type %s", aws.ToString(r.Status), r.ReplicationType)
	}
	cfgs, err := c.DescribeReplicationConfigs(ctx, &dms.DescribeReplicationConfigsInput{})
	if err != nil || len(cfgs.ReplicationConfigs) != 1 {
		t.Fatalf("configs after the refused requests: %v, %v", cfgs, err)
	}
	eps, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{})
	if err != nil || len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints after the refused requests: %v, %v", eps, err)
	}
	for _, e := range eps.Endpoints {
		if aws.ToInt32(e.Port) != 5432 {
			t.Errorf("endpoint %s has port %d after the refused requests", aws.ToString(e.EndpointIdentifier), aws.ToInt32(e.Port))
		}
	}
	tags, err := c.ListTagsForResource(ctx, &dms.ListTagsForResourceInput{ResourceArnList: []string{f.srcArn, f.dstArn, f.configArn}})
	if err != nil || len(tags.TagList) != 0 {
		t.Fatalf("tags after the refused requests: %v, %v", tags, err)
	}
}

// TestAPIFaultsDescribeFilters: a Describe call whose filters match
// nothing answers ResourceNotFoundFault, as DMS does, and one without
// filters lists what there is, nothing in an empty account. Waiters for a
// deleted resource (the SDK's EndpointDeleted, Airflow's
// replication_config_deleted) end on that fault.
func TestAPIFaultsDescribeFilters(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	// lists calls the three account-wide Describe operations.
	lists := func(filters func(op string) []types.Filter) (counts map[string]int, errs map[string]error) {
		counts, errs = map[string]int{}, map[string]error{}
		eps, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{Filters: filters("DescribeEndpoints")})
		if errs["DescribeEndpoints"] = err; err == nil {
			counts["DescribeEndpoints"] = len(eps.Endpoints)
		}
		cfgs, err := c.DescribeReplicationConfigs(ctx, &dms.DescribeReplicationConfigsInput{Filters: filters("DescribeReplicationConfigs")})
		if errs["DescribeReplicationConfigs"] = err; err == nil {
			counts["DescribeReplicationConfigs"] = len(cfgs.ReplicationConfigs)
		}
		reps, err := c.DescribeReplications(ctx, &dms.DescribeReplicationsInput{Filters: filters("DescribeReplications")})
		if errs["DescribeReplications"] = err; err == nil {
			counts["DescribeReplications"] = len(reps.Replications)
		}
		return counts, errs
	}
	requireEmpty := func(when string) {
		t.Helper()
		counts, errs := lists(func(string) []types.Filter { return nil })
		for op, err := range errs {
			if err != nil || counts[op] != 0 {
				t.Fatalf("%s %s without filters: %d items, %v; want an empty list", when, op, counts[op], err)
			}
		}
	}
	requireNotFound := func(when string, filters func(op string) []types.Filter) {
		t.Helper()
		_, errs := lists(filters)
		for op, err := range errs {
			var nf *types.ResourceNotFoundFault
			if !errors.As(err, &nf) {
				t.Fatalf("%s %s with filters that match nothing: %v; want ResourceNotFoundFault", when, op, err)
			}
			if !strings.Contains(nf.ErrorMessage(), "found matching provided filters") {
				t.Errorf("%s %s: message %q", when, op, nf.ErrorMessage())
			}
		}
	}
	byARN := func(arn string) func(op string) []types.Filter {
		return func(op string) []types.Filter {
			if op == "DescribeEndpoints" {
				return filter("endpoint-arn", arn)
			}
			return filter("replication-config-arn", arn)
		}
	}

	requireEmpty("an empty account:")
	requireNotFound("an empty account:", byARN(arnBase+"replication-config:"+strings.Repeat("Z", 26)))

	f := newFixture(t, c, "apifilters", "full-load")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	testenv.Exec(t, f.src, `INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g`)
	counts, errs := lists(func(op string) []types.Filter {
		if op == "DescribeEndpoints" {
			return filter("endpoint-arn", f.srcArn)
		}
		return filter("replication-config-id", strings.ToUpper(f.configID))
	})
	for op, err := range errs {
		if err != nil || counts[op] != 1 {
			t.Fatalf("%s with a filter that matches: %d items, %v; want 1", op, counts[op], err)
		}
	}
	requireNotFound("beside the fixture:", func(op string) []types.Filter {
		if op == "DescribeEndpoints" {
			return filter("engine-name", "mysql")
		}
		return filter("replication-config-id", "no-such-config")
	})
	// Every filter must match: two that each match a different item
	// match nothing.
	_, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{Filters: append(filter("endpoint-arn", f.srcArn), filter("endpoint-type", "target")...)})
	requireFault(t, err, "ResourceNotFoundFault")

	// Table statistics: none before the first run, and a filter that
	// matches no table is a fault, for a config that exists.
	stats := func(filters []types.Filter) (int, error) {
		out, err := c.DescribeReplicationTableStatistics(ctx, &dms.DescribeReplicationTableStatisticsInput{ReplicationConfigArn: aws.String(f.configArn), Filters: filters})
		if err != nil {
			return 0, err
		}
		return len(out.ReplicationTableStatistics), nil
	}
	if n, err := stats(nil); err != nil || n != 0 {
		t.Fatalf("table statistics before the first run: %d, %v; want an empty list", n, err)
	}
	_, err = stats(filter("table-name", "items"))
	requireFault(t, err, "ResourceNotFoundFault")
	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	f.waitFor(t, c, "deprovisioned after the full load", 2*time.Minute, func(r types.Replication) bool {
		return aws.ToString(r.Status) == "stopped" && r.ProvisionData != nil && aws.ToString(r.ProvisionData.ProvisionState) == "deprovisioned"
	})
	if n, err := stats(filter("table-name", "items")); err != nil || n != 1 {
		t.Fatalf("table statistics of items: %d, %v; want 1", n, err)
	}
	if n, err := stats(nil); err != nil || n != 1 {
		t.Fatalf("table statistics without filters: %d, %v; want 1", n, err)
	}
	_, err = stats(filter("table-name", "no_such_table"))
	requireFault(t, err, "ResourceNotFoundFault")
	_, err = stats(append(filter("table-name", "items"), filter("table-state", "Table error")...))
	requireFault(t, err, "ResourceNotFoundFault")

	// Delete the config and wait for it to be gone as Airflow's DMS
	// Serverless delete operator does: DescribeReplicationConfigs
	// filtered by its ARN until ResourceNotFoundFault.
	if _, err := c.DeleteReplicationConfig(ctx, &dms.DeleteReplicationConfigInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("DeleteReplicationConfig: %v", err)
	}
	for attempt := 1; ; attempt++ {
		_, err := c.DescribeReplicationConfigs(ctx, &dms.DescribeReplicationConfigsInput{Filters: filter("replication-config-arn", f.configArn)})
		if faultCode(err) == "ResourceNotFoundFault" {
			break
		}
		if attempt == 10 {
			t.Fatalf("the deleted config is still described after %d attempts (%v): a replication_config_deleted waiter would not end", attempt, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, err = c.DescribeReplications(ctx, &dms.DescribeReplicationsInput{Filters: filter("replication-config-arn", f.configArn)})
	requireFault(t, err, "ResourceNotFoundFault")
	_, err = c.DescribeReplicationTableStatistics(ctx, &dms.DescribeReplicationTableStatisticsInput{ReplicationConfigArn: aws.String(f.configArn)})
	requireFault(t, err, "ResourceNotFoundFault")

	// The SDK's own waiter for deleted endpoints.
	for _, arn := range []string{f.srcArn, f.dstArn} {
		if _, err := c.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: aws.String(arn)}); err != nil {
			t.Fatalf("DeleteEndpoint: %v", err)
		}
		w := dms.NewEndpointDeletedWaiter(c, func(o *dms.EndpointDeletedWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
		if err := w.Wait(ctx, &dms.DescribeEndpointsInput{Filters: filter("endpoint-arn", arn)}, 10*time.Second); err != nil {
			t.Fatalf("EndpointDeleted waiter: %v", err)
		}
	}
	requireEmpty("after the deletes:")
}

// TestAPIFaultsBodyTooLarge: a client sending a body three times the cap
// reads the 413 RequestEntityTooLarge fault, not a connection reset, also
// when it sends the whole request before it reads (as curl and botocore
// do), and the server goes on answering.
func TestAPIFaultsBodyTooLarge(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	huge := strings.Repeat("x", 12<<20)
	clients := map[string]*dms.Client{
		"Go's transport (reads while it sends)": s.client(testSecret),
		"sending first": dms.New(dms.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(s.url),
			Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
			Retryer:      aws.NopRetryer{},
			HTTPClient:   sendFirst{},
		}),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				_, err := c.ModifyReplicationConfig(ctx, &dms.ModifyReplicationConfigInput{
					ReplicationConfigArn: aws.String(arnBase + "replication-config:" + strings.Repeat("Z", 26)),
					TableMappings:        aws.String(huge),
				})
				requireFault(t, err, "RequestEntityTooLarge")
				if status := httpStatus(err); status != http.StatusRequestEntityTooLarge {
					t.Fatalf("status %d, want 413: %v", status, err)
				}
				if !strings.Contains(err.Error(), "larger than 4194304 bytes") {
					t.Fatalf("the fault does not say the limit: %v", err)
				}
			}
			if _, err := c.DescribeEndpoints(ctx, &dms.DescribeEndpointsInput{}); err != nil {
				t.Fatalf("a request after the refused ones: %v", err)
			}
		})
	}
}

// sendFirst is an HTTP client for the SDK that writes the whole request
// before it reads a byte of the answer, on a connection of its own, as curl
// and botocore do. Go's transport reads while it sends, so it sees an early
// answer even when the server resets the connection after it.
type sendFirst struct{}

func (sendFirst) Do(r *http.Request) (*http.Response, error) {
	conn, err := net.DialTimeout("tcp", r.URL.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if err := r.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send the request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), r)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	resp.Body = connBody{ReadCloser: resp.Body, conn: conn}
	return resp, nil
}

// connBody closes the connection with the body it carries.
type connBody struct {
	io.ReadCloser
	conn net.Conn
}

func (b connBody) Close() error {
	return errors.Join(b.ReadCloser.Close(), b.conn.Close())
}
