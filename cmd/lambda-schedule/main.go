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

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/lambdahttp"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

func main() { lambdahttp.Start("sluice-schedule", setup) }

func setup(ctx context.Context, log *slog.Logger) (func(context.Context, json.RawMessage) (schedule.Result, error), error) {
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY"); err != nil {
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
	// Starts are queued for the server that runs replicators, as the API
	// function does.
	a := api.Internal(st, api.Queue{Store: st}, log)
	run := &runner.Runner{Store: st, Log: log, DeprovisionAfter: after}
	h := &schedule.Handler{API: a, IsInvalidState: api.IsInvalidState, Sweeps: []func(context.Context) error{run.Sweep}, Log: log}
	return func(ctx context.Context, payload json.RawMessage) (schedule.Result, error) {
		ev, err := schedule.ParseEvent(payload)
		if err != nil {
			return schedule.Result{}, err
		}
		return h.Handle(ctx, ev)
	}, nil
}
