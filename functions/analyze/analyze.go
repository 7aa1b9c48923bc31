// Package analyze is the analyze function: given a replication config, it
// answers what its source holds and how fast it writes, and the capacity
// plan for it, without starting anything. The analysis itself is the
// control loop's (capacity/control), which runs it at every start; this is
// the stateless handler that lets a user or a pipeline ask for it alone.
package analyze

import (
	"context"
	"errors"

	"github.com/sluicedb/sluice/capacity/control"
)

// Request is the function's event.
type Request struct {
	ReplicationConfigArn string `json:"replicationConfigArn"`
}

// Analyzer analyzes a replication's source (control.Server).
type Analyzer interface {
	Analyze(ctx context.Context, arn string) (*control.Analysis, error)
}

// Handle answers one request.
func Handle(ctx context.Context, a Analyzer, req Request) (*control.Analysis, error) {
	if req.ReplicationConfigArn == "" {
		return nil, errors.New(`the event needs replicationConfigArn: {"replicationConfigArn": "arn:aws:dms:…:replication-config:…"}`)
	}
	return a.Analyze(ctx, req.ReplicationConfigArn)
}
