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
