// Command lambda-api is the DMS API as an AWS Lambda function behind an API
// Gateway HTTP API (payload format 2.0). It reads the environment contract
// of `sluice serve` (DESIGN.md), keeps its state in the Redis at
// SLUICE_REDIS_URL, and queues the replications it starts for the launcher
// to claim, since a function cannot run replicators. Build it with
// -tags lambda.norpc for the provided.al2023 runtime, and put it on the
// HTTP API's $default stage: a named stage's name is part of the path the
// client signs, and the API does not route it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/infra/lambdahttp"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
)

// initTimeout bounds the start, well inside the 10 s Lambda allows for it,
// so an unreachable Redis is reported rather than cut off by Lambda.
const initTimeout = 5 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	// aws-lambda-go logs through the standard logger; this makes its lines
	// JSON as well.
	slog.SetDefault(log)
	// Each invocation flushes its spans and points before it returns:
	// Lambda may freeze the process right after.
	if _, err := telemetry.Setup(context.Background(), "sluice-api"); err != nil {
		log.Error("telemetry", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		_ = lambdahttp.ReportInitError(ctx, err)
		cancel()
		os.Exit(1)
	}
	h, err := setup(log)
	if err != nil {
		log.Error("the DMS API function cannot start", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		if rerr := lambdahttp.ReportInitError(ctx, err); rerr != nil {
			log.Error("could not tell Lambda why", "error", rerr.Error())
		}
		cancel()
		os.Exit(1)
	}
	lambda.Start(telemetry.Flushing(lambdahttp.Handler(h)))
}

func setup(log *slog.Logger) (*api.Handler, error) {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	// A deployment passes the keys as Secrets Manager ARNs (template.yaml).
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY"); err != nil {
		return nil, err
	}
	// The URL is not in the message: it may carry the Redis password.
	st, err := store.Open(ctx, api.Env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0"), "sluice")
	if err != nil {
		return nil, fmt.Errorf("open the control state: %w; set SLUICE_REDIS_URL to the Redis that `sluice serve` and the launcher use (redis://host:port/db), reachable from the function", err)
	}
	h, err := api.FromEnv(st, api.Queue{Store: st}, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Only the gateway's request context sets this header (lambdahttp).
	h.IAMCaller = lambdahttp.IAMCallerHeader
	return h, nil
}
