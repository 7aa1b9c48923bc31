// Command lambda-schedule is the schedule function as an AWS Lambda
// function, invoked by EventBridge Scheduler: user schedules' start and
// stop events (`sluice schedule create`), and the every-minute sweep that
// releases the capacity of replications stopped for SLUICE_DEPROVISION_AFTER.
// With SLUICE_LAUNCHER=ecs (no server runs) the sweep also runs the control
// loop for SLUICE_SWEEP_WINDOW (control.Server.Pass). It reads the
// environment contract of `sluice serve` (DESIGN.md) and keeps its state in
// the Redis at SLUICE_REDIS_URL. Build it with -tags lambda.norpc for the
// provided.al2023 runtime.
package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/sluicedb/sluice/capacity/control"
	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/lambdahttp"
)

func main() { lambdahttp.Start("sluice-schedule", setup) }

func setup(ctx context.Context, log *slog.Logger) (func(context.Context, json.RawMessage) (schedule.Result, error), error) {
	cfg, st, err := config.Open(ctx)
	if err != nil {
		return nil, err
	}
	// Starts are queued, as the API function queues them.
	a := api.Internal(cfg, st, api.Queue{Store: st}, log)
	var sweep func(context.Context) error
	if cfg.Launcher == "ecs" {
		// Replicators are ECS tasks, and no server runs: each sweep runs
		// the control loop for a while.
		launcher, reports, err := control.OpenLauncher(ctx, cfg, st, log)
		if err != nil {
			return nil, err
		}
		srv, err := control.Open(ctx, cfg, st, launcher, reports, log)
		if err != nil {
			return nil, err
		}
		sweep = func(ctx context.Context) error {
			defer launcher.Shutdown(context.WithoutCancel(ctx))
			return srv.Pass(ctx, cfg.SweepWindow)
		}
	} else {
		srv, err := control.Open(ctx, cfg, st, nil, nil, log)
		if err != nil {
			return nil, err
		}
		sweep = srv.Sweep
	}
	h := &schedule.Handler{API: a, IsInvalidState: api.IsInvalidState, Sweeps: []func(context.Context) error{sweep}, Log: log}
	return func(ctx context.Context, payload json.RawMessage) (schedule.Result, error) {
		ev, err := schedule.ParseEvent(payload)
		if err != nil {
			return schedule.Result{}, err
		}
		return h.Handle(ctx, ev)
	}, nil
}
