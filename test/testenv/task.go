package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

// PGEndpoint returns a DMS-style endpoint for a local database.
func PGEndpoint(db string) task.Endpoint {
	return task.Endpoint{EngineName: "postgres", ServerName: PGHost, Port: atoi(PGPort), DatabaseName: db, Username: PGUser}
}

// IncludeAll is a table mapping that selects every table of schema.
func IncludeAll(schema string) json.RawMessage {
	return json.RawMessage(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"all","object-locator":{"schema-name":"` + schema + `","table-name":"%"},"rule-action":"include"}]}`)
}

// PGTask returns a task that replicates every table of schema public from
// src to dst.
func PGTask(t testing.TB, id, typ, src, dst string) *task.Task {
	return &task.Task{
		ReplicationConfigIdentifier: id, ReplicationType: typ,
		SourceEndpoint: PGEndpoint(src), TargetEndpoint: PGEndpoint(dst),
		TableMappings: IncludeAll("public"),
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// Running is a replication running in the test process.
type Running struct {
	Stats  *runtime.Stats
	cancel context.CancelFunc
	done   chan error
}

// Start runs tk in the background. The test fails if it ends with an error
// before Stop; Stop is also called when the test ends.
func Start(t testing.TB, tk *task.Task) *Running {
	t.Helper()
	skipShort(t, "the task's source and target databases")
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Stats: runtime.NewStats(), cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { r.done <- task.Run(ctx, tk, r.Stats, log) }()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// Stop stops the replication gracefully and returns how it ended.
func (r *Running) Stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err // Stop may be called again by the cleanup
	return err
}

// Err returns the replication's error if it has ended, else nil.
func (r *Running) Err() error {
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			return errors.New("the replication ended")
		}
		return err
	default:
		return nil
	}
}

// Replication is a running replication, in process or not: Err returns why
// it ended, or nil while it runs.
type Replication interface {
	Err() error
}

// WaitEqual waits until every table has the same rows in both databases,
// and fails the test with the differences after timeout, or at once when r
// ends.
func WaitEqual(t testing.TB, r Replication, srcDB, dstDB string, timeout time.Duration, tables ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	srcConn, dstConn := Connect(t, srcDB), Connect(t, dstDB)
	for {
		if r != nil {
			if err := r.Err(); err != nil {
				t.Fatalf("replication failed: %v", err)
			}
		}
		equal := true
		for _, tb := range tables {
			// A table the target does not have yet is not equal yet.
			sn, sd, err1 := tableDigest(srcConn, tb)
			dn, dd, err2 := tableDigest(dstConn, tb)
			if err1 != nil || err2 != nil || sn != dn || sd != dd {
				equal = false
				break
			}
		}
		if equal {
			return
		}
		if time.Now().After(deadline) {
			RequireEqualTables(t, srcDB, dstDB, tables...)
			t.Fatalf("tables still differ after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
