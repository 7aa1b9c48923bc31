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
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/capacity/control"
	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/config"
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

// contract is the environment as the commands that only read a few of its
// variables see it (watch, schedule): a variable they do not use that is
// wrong is sluice serve's to refuse, not theirs.
func contract() *config.Config {
	c, _ := config.Read(os.Getenv)
	return c
}

func serve(ctx context.Context, log *slog.Logger) error {
	shutdownTelemetry, err := telemetry.Setup(ctx, "sluice")
	if err != nil {
		return err
	}
	defer telemetry.ShutdownAfterStop(shutdownTelemetry)
	cfg, err := config.Load(ctx)
	if err != nil {
		return err
	}
	if cfg.TrustIAM {
		return fmt.Errorf("SLUICE_API_AUTH=iam is for the API function behind API Gateway, whose IAM authorizer verifies callers; sluice serve verifies DMS signatures itself: unset it")
	}
	st, err := cfg.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	launcher, reports, err := control.OpenLauncher(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	srv, err := control.Open(ctx, cfg, st, launcher, reports, log)
	if err != nil {
		return err
	}
	handler, err := api.New(cfg, st, srv, log)
	if err != nil {
		return err
	}
	local := &schedule.Local{Store: st, Log: log, Handler: &schedule.Handler{API: handler, IsInvalidState: api.IsInvalidState, Log: log}}
	srv.Loops = []control.Loop{{Name: "schedules", Interval: time.Second, Do: func(ctx context.Context) error { return local.Fire(ctx, time.Now()) }}}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on SLUICE_ADDR %s: %w", cfg.Addr, err)
	}
	web := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	// The control loop outlives ctx: at a signal the API stops first, then
	// the replicators (each commits its position), and the loop records
	// how they ended before it stops.
	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoop()
	var g errgroup.Group
	g.Go(func() error {
		if err := srv.Run(loopCtx); err != nil {
			stopLoop()
			_ = web.Close()
			return fmt.Errorf("adopt the replications a previous server left running: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		log.Info("sluice serving the DMS API", "addr", ln.Addr().String(), "region", cfg.Region)
		if err := web.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			stopLoop()
			return err
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-loopCtx.Done():
			return nil
		}
		shut, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = web.Shutdown(shut)
		srv.Detach()
		launcher.Shutdown(shut)
		stopLoop()
		return nil
	})
	return g.Wait()
}

// shutdownTimeout bounds a graceful shutdown: the API's requests under way,
// then every replicator's last commit.
const shutdownTimeout = 30 * time.Second
