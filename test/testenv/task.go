package testenv

import (
	"encoding/json"
	"testing"

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
