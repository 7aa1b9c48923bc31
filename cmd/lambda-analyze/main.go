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
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/infra/lambdahttp"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
)

const initTimeout = 5 * time.Second

// Request is the function's event.
type Request struct {
	ReplicationConfigArn string `json:"replicationConfigArn"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	// Each invocation flushes its spans and points before it returns:
	// Lambda may freeze the process right after.
	if _, err := telemetry.Setup(context.Background(), "sluice-analyze"); err != nil {
		log.Error("telemetry", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		_ = lambdahttp.ReportInitError(ctx, err)
		cancel()
		os.Exit(1)
	}
	run, err := setup(log)
	if err != nil {
		log.Error("the analyze function cannot start", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		if rerr := lambdahttp.ReportInitError(ctx, err); rerr != nil {
			log.Error("could not tell Lambda why", "error", rerr.Error())
		}
		cancel()
		os.Exit(1)
	}
	lambda.Start(telemetry.Flushing(func(ctx context.Context, req Request) (*runner.Analysis, error) {
		if req.ReplicationConfigArn == "" {
			return nil, errors.New(`the event needs replicationConfigArn: {"replicationConfigArn": "arn:aws:dms:…:replication-config:…"}`)
		}
		return run.Analyze(ctx, req.ReplicationConfigArn)
	}))
}

func setup(log *slog.Logger) (*runner.Runner, error) {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	// A deployment passes the keys as Secrets Manager ARNs (template.yaml).
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY"); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, api.Env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0"), "sluice")
	if err != nil {
		return nil, fmt.Errorf("open the control state: %w; set SLUICE_REDIS_URL to the Redis the API uses (redis://host:port/db), reachable from the function", err)
	}
	run := &runner.Runner{Store: st, Log: log}
	if k := os.Getenv("SLUICE_MASTER_KEY"); k != "" {
		if run.Box, err = secrets.NewBox(k); err != nil {
			return nil, fmt.Errorf("SLUICE_MASTER_KEY: %w", err)
		}
	}
	if run.Secrets, err = secrets.NewResolver(ctx); err != nil {
		return nil, err
	}
	return run, nil
}
