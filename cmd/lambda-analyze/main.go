// Command lambda-analyze is the analyze function as an AWS Lambda
// function: given {"replicationConfigArn": "…"}, it connects to the
// replication's source, collects the selected tables' rows, bytes, LOB
// columns, keyless tables and change rate, and answers them with the
// capacity plan (control.Analysis). It reads SLUICE_REDIS_URL,
// SLUICE_MASTER_KEY (to open endpoint passwords) and AWS credentials for
// endpoints whose passwords are in Secrets Manager. Build it with -tags
// lambda.norpc for the provided.al2023 runtime.
package main

import (
	"context"
	"log/slog"

	"github.com/sluicedb/sluice/capacity/control"
	"github.com/sluicedb/sluice/functions/analyze"
	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/lambdahttp"
)

func main() { lambdahttp.Start("sluice-analyze", setup) }

func setup(ctx context.Context, log *slog.Logger) (func(context.Context, analyze.Request) (*control.Analysis, error), error) {
	cfg, st, err := config.Open(ctx)
	if err != nil {
		return nil, err
	}
	srv, err := control.Open(ctx, cfg, st, nil, nil, log)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, req analyze.Request) (*control.Analysis, error) {
		return analyze.Handle(ctx, srv, req)
	}, nil
}
