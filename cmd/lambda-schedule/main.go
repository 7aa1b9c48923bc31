// Command lambda-schedule is the schedule function as an AWS Lambda
// function, invoked by EventBridge Scheduler: user schedules' start and
// stop events (`sluice schedule create`), and the every-minute sweep that
// releases the capacity of replications stopped for SLUICE_DEPROVISION_AFTER.
// It reads the environment contract of `sluice serve` (DESIGN.md) and
// keeps its state in the Redis at SLUICE_REDIS_URL. Build it with -tags
// lambda.norpc for the provided.al2023 runtime.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/lambdahttp"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
)

const initTimeout = 5 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	// Each invocation flushes its spans and points before it returns:
	// Lambda may freeze the process right after.
	if _, err := telemetry.Setup(context.Background(), "sluice-schedule"); err != nil {
		log.Error("telemetry", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		_ = lambdahttp.ReportInitError(ctx, err)
		cancel()
		os.Exit(1)
	}
	h, err := setup(log)
	if err != nil {
		log.Error("the schedule function cannot start", "error", err.Error())
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		if rerr := lambdahttp.ReportInitError(ctx, err); rerr != nil {
			log.Error("could not tell Lambda why", "error", rerr.Error())
		}
		cancel()
		os.Exit(1)
	}
	lambda.Start(telemetry.Flushing(func(ctx context.Context, payload json.RawMessage) (schedule.Result, error) {
		ev, err := schedule.ParseEvent(payload)
		if err != nil {
			return schedule.Result{}, err
		}
		return h.Handle(ctx, ev)
	}))
}

func setup(log *slog.Logger) (*schedule.Handler, error) {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	// A deployment passes the keys as Secrets Manager ARNs (template.yaml).
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY"); err != nil {
		return nil, err
	}
	after, err := time.ParseDuration(api.Env("SLUICE_DEPROVISION_AFTER", "48h"))
	if err != nil || after < 0 {
		return nil, fmt.Errorf("SLUICE_DEPROVISION_AFTER %q is not a duration like 48h or 30m", os.Getenv("SLUICE_DEPROVISION_AFTER"))
	}
	st, err := store.Open(ctx, api.Env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0"), "sluice")
	if err != nil {
		return nil, fmt.Errorf("open the control state: %w; set SLUICE_REDIS_URL to the Redis the API uses (redis://host:port/db), reachable from the function", err)
	}
	// Starts are queued for the launcher, as the API function does.
	a := api.Internal(st, api.Queue{Store: st}, log)
	run := &runner.Runner{Store: st, Log: log, DeprovisionAfter: after}
	return &schedule.Handler{API: a, IsInvalidState: api.IsInvalidState, Sweeps: []func(context.Context) error{run.Sweep}, Log: log}, nil
}
