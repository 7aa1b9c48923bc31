// Command lambda-analyze is the analyze function as an AWS Lambda
// function: given {"replicationConfigArn": "…"}, it connects to the
// replication's source, collects the selected tables' rows, bytes, LOB
// columns, keyless tables and change rate, and answers them with the
// capacity plan (runner.Analysis). It reads SLUICE_REDIS_URL,
// SLUICE_MASTER_KEY (to open endpoint passwords) and AWS credentials for
// endpoints whose passwords are in Secrets Manager. Build it with -tags
// lambda.norpc for the provided.al2023 runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/infra/lambdahttp"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

// Request is the function's event.
type Request struct {
	ReplicationConfigArn string `json:"replicationConfigArn"`
}

func main() { lambdahttp.Start("sluice-analyze", setup) }

func setup(ctx context.Context, log *slog.Logger) (func(context.Context, Request) (*runner.Analysis, error), error) {
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY"); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, api.Env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0"), "sluice")
	if err != nil {
		return nil, fmt.Errorf("open the control state: %w; set SLUICE_REDIS_URL to the Redis the API uses (redis://host:port/db), reachable from the function", err)
	}
	run := &runner.Runner{Store: st, Log: log}
	if run.Box, run.Secrets, err = secrets.FromEnv(ctx); err != nil {
		return nil, err
	}
	return func(ctx context.Context, req Request) (*runner.Analysis, error) {
		if req.ReplicationConfigArn == "" {
			return nil, errors.New(`the event needs replicationConfigArn: {"replicationConfigArn": "arn:aws:dms:…:replication-config:…"}`)
		}
		return run.Analyze(ctx, req.ReplicationConfigArn)
	}, nil
}
