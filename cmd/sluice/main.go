// Command sluice runs Sluice's control plane on one machine (`sluice
// serve`): the DMS API, its state in Redis, and replicators as child
// processes. The environment variables are the contract in DESIGN.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/runner"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/ecs"
	"github.com/sluicedb/sluice/infra/process"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
)

const usage = `usage: sluice <command> [arguments]

serve   run the DMS API on SLUICE_ADDR (default 127.0.0.1:8377), keep state in
        SLUICE_REDIS_URL, and run replicators as child processes. Requires
        SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY (the SigV4 key pair
        clients sign with).
watch   show one replication live: status, full-load progress per table, lag
        and throughput (sluice watch -h for its flags).
schedule create|list|delete
        start and stop replications on a schedule (sluice schedule for its
        flags).`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	case "watch":
		fi, _ := os.Stdout.Stat()
		tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
		err = watch(ctx, os.Args[2:], os.Stdout, tty)
		if errors.Is(err, flag.ErrHelp) {
			return
		}
	case "schedule":
		err = scheduleCmd(ctx, os.Args[2:], os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

var env = api.Env

// every runs a sweep at an interval, as EventBridge Scheduler runs the
// schedule function in AWS (every minute; locally more often when the
// deprovision delay or the lease TTL is short).
func every(ctx context.Context, interval time.Duration, what string, sweep func(context.Context) error, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn(what+" failed", "error", err)
			}
		}
	}
}

// shutdowner is a launcher that stops watching (and, locally, stops its
// replicators) when the server ends.
type shutdowner interface {
	capacity.Launcher
	Shutdown(ctx context.Context)
}

// newLauncher is SLUICE_LAUNCHER's launcher: replicators as child
// processes (local), or as ECS tasks (ecs, configured by SLUICE_ECS_*).
func newLauncher(ctx context.Context, kind, redisURL string, leaseTTL time.Duration, st *store.Store, reports chan<- capacity.Report, log *slog.Logger) (shutdowner, error) {
	if kind == "ecs" {
		return ecs.FromEnv(ctx, st, reports, log)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin := env("SLUICE_REPLICATOR_BIN", filepath.Join(filepath.Dir(self), "sluice-replicator"))
	dir := env("SLUICE_STATE_DIR", filepath.Join(os.TempDir(), fmt.Sprintf("sluice-%d", os.Getuid())))
	l, err := process.New(bin, dir, reports, log)
	if err != nil {
		return nil, err
	}
	l.Env = []string{"SLUICE_REDIS_URL=" + redisURL, "SLUICE_LEASE_TTL=" + leaseTTL.String()}
	return l, nil
}

// scalerFromEnv is the autoscaler: on unless SLUICE_AUTOSCALE=off, with
// its waits and the cores a unit stands for adjustable.
func scalerFromEnv() (*capacity.Scaler, error) {
	switch v := env("SLUICE_AUTOSCALE", "on"); v {
	case "off":
		return nil, nil
	case "on":
	default:
		return nil, fmt.Errorf("SLUICE_AUTOSCALE %q is not on or off", v)
	}
	s := capacity.DefaultScaler()
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"SLUICE_SCALE_UP_AFTER", &s.UpAfter}, {"SLUICE_SCALE_DOWN_AFTER", &s.DownAfter}} {
		if v := os.Getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return nil, fmt.Errorf("%s %q is not a duration like 2m", d.name, v)
			}
			*d.to = t
		}
	}
	if v := os.Getenv("SLUICE_UNIT_CPU"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("SLUICE_UNIT_CPU %q is not a positive number of cores, like 1 or 0.5", v)
		}
		s.UnitCPU = f
	}
	return s, nil
}

func serve(ctx context.Context, log *slog.Logger) error {
	shutdownTelemetry, err := telemetry.Setup(ctx, "sluice")
	if err != nil {
		return err
	}
	defer telemetry.ShutdownAfterStop(shutdownTelemetry)
	deprovisionAfter, err := time.ParseDuration(env("SLUICE_DEPROVISION_AFTER", "48h"))
	if err != nil || deprovisionAfter < 0 {
		return fmt.Errorf("SLUICE_DEPROVISION_AFTER %q is not a duration like 48h or 30m", os.Getenv("SLUICE_DEPROVISION_AFTER"))
	}
	leaseTTL, err := time.ParseDuration(env("SLUICE_LEASE_TTL", "15s"))
	if err != nil || leaseTTL < time.Second {
		return fmt.Errorf("SLUICE_LEASE_TTL %q is not a duration of at least 1s, like 15s", os.Getenv("SLUICE_LEASE_TTL"))
	}
	launcherKind := env("SLUICE_LAUNCHER", "local")
	if launcherKind != "local" && launcherKind != "ecs" {
		return fmt.Errorf("SLUICE_LAUNCHER %q is not local (child processes) or ecs (ECS tasks)", launcherKind)
	}
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY"); err != nil {
		return err
	}
	redisURL := env("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0")
	st, err := store.Open(ctx, redisURL, "sluice")
	if err != nil {
		return err
	}
	defer st.Close()
	scaler, err := scalerFromEnv()
	if err != nil {
		return err
	}
	run := &runner.Runner{Store: st, Log: log, DeprovisionAfter: deprovisionAfter, LeaseTTL: leaseTTL, Scaler: scaler}
	handler, err := api.FromEnv(st, run, log)
	if err != nil {
		return err
	}
	if handler.TrustIAM {
		return fmt.Errorf("SLUICE_API_AUTH=iam is for the API function behind API Gateway, whose IAM authorizer verifies callers; sluice serve verifies DMS signatures itself: unset it")
	}
	resolver, err := secrets.NewResolver(ctx)
	if err != nil {
		return err
	}
	run.Box, run.Secrets = handler.Box, resolver

	reports := make(chan capacity.Report, 64)
	launcher, err := newLauncher(ctx, launcherKind, redisURL, leaseTTL, st, reports, log)
	if err != nil {
		return err
	}
	run.Launcher = launcher
	addr := env("SLUICE_ADDR", "127.0.0.1:8377")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on SLUICE_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	go run.Run(runCtx, reports)
	go every(runCtx, min(max(deprovisionAfter/2, time.Second), time.Minute), "deprovision sweep", run.Sweep, log)
	go every(runCtx, leaseTTL/2, "lease sweep", run.SweepLeases, log)
	go every(runCtx, 500*time.Millisecond, "queued requests", run.Consume, log)
	local := &schedule.Local{Store: st, Log: log, Handler: &schedule.Handler{API: handler, IsInvalidState: api.IsInvalidState, Log: log}}
	go every(runCtx, time.Second, "schedules", func(ctx context.Context) error { return local.Fire(ctx, time.Now()) }, log)
	if err := run.Adopt(ctx); err != nil {
		return fmt.Errorf("adopt the replications a previous server left running: %w", err)
	}
	go func() {
		<-ctx.Done()
		// Stop serving, then stop the replicators gracefully so each
		// commits its position, and record how they ended.
		shut, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		run.Detach()
		launcher.Shutdown(shut)
		time.Sleep(200 * time.Millisecond) // let the last reports land
		cancelRun()
	}()
	log.Info("sluice serving the DMS API", "addr", ln.Addr().String(), "region", handler.Region)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-runCtx.Done()
	return nil
}
