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

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/ecs"
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
	// Starts are queued, as the API function queues them.
	a := api.Internal(st, api.Queue{Store: st}, log)
	run := &runner.Runner{Store: st, Log: log, DeprovisionAfter: after}
	sweeps := []func(context.Context) error{run.Sweep}
	if api.Env("SLUICE_LAUNCHER", "") == "ecs" {
		// Replicators are ECS tasks, and no server runs: each sweep runs
		// the control loop for a while (runner.Pass).
		if sweeps, err = ecsSweep(ctx, st, run, log); err != nil {
			return nil, err
		}
	}
	h := &schedule.Handler{API: a, IsInvalidState: api.IsInvalidState, Sweeps: sweeps, Log: log}
	return func(ctx context.Context, payload json.RawMessage) (schedule.Result, error) {
		ev, err := schedule.ParseEvent(payload)
		if err != nil {
			return schedule.Result{}, err
		}
		return h.Handle(ctx, ev)
	}, nil
}

// ecsSweep is the sweep of a deployment without a server: for
// SLUICE_SWEEP_WINDOW (default 40 s, inside the function's timeout) it
// carries out the queued requests, launches and follows the replicators
// (ECS tasks), records their statistics and sweeps leases and timers.
func ecsSweep(ctx context.Context, st *store.Store, run *runner.Runner, log *slog.Logger) ([]func(context.Context) error, error) {
	window, err := time.ParseDuration(api.Env("SLUICE_SWEEP_WINDOW", "40s"))
	if err != nil || window <= 0 {
		return nil, fmt.Errorf("SLUICE_SWEEP_WINDOW %q is not a duration like 40s", os.Getenv("SLUICE_SWEEP_WINDOW"))
	}
	ttl, err := time.ParseDuration(api.Env("SLUICE_LEASE_TTL", "15s"))
	if err != nil || ttl < time.Second {
		return nil, fmt.Errorf("SLUICE_LEASE_TTL %q is not a duration of at least 1s, like 15s", os.Getenv("SLUICE_LEASE_TTL"))
	}
	if run.Box, run.Secrets, err = secrets.FromEnv(ctx); err != nil {
		return nil, err
	}
	reports := make(chan capacity.Report, 64)
	launcher, err := ecs.FromEnv(ctx, st, reports, log)
	if err != nil {
		return nil, err
	}
	run.Launcher, run.LeaseTTL = launcher, ttl
	return []func(context.Context) error{func(ctx context.Context) error {
		defer launcher.Shutdown(context.WithoutCancel(ctx))
		return run.Pass(ctx, reports, window)
	}}, nil
}
