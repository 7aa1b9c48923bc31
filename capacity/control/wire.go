package control

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/ecs"
	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/process"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

// Open builds a server from the environment contract: the credentials'
// openers, the deprovision delay, the lease TTL and the autoscaler. The
// launcher and its reports may be nil for a process that only analyzes
// (the analyze function).
func Open(ctx context.Context, cfg *config.Config, st *store.Store, l Launcher, reports <-chan launch.Report, log *slog.Logger) (*Server, error) {
	box, err := cfg.Box()
	if err != nil {
		return nil, err
	}
	resolver, err := secrets.NewResolver(ctx)
	if err != nil {
		return nil, err
	}
	var scaler *capacity.Scaler
	if cfg.Autoscale {
		scaler = capacity.DefaultScaler()
		if cfg.ScaleUpAfter > 0 {
			scaler.UpAfter = cfg.ScaleUpAfter
		}
		if cfg.ScaleDownAfter > 0 {
			scaler.DownAfter = cfg.ScaleDownAfter
		}
		if cfg.UnitCPU > 0 {
			scaler.UnitCPU = cfg.UnitCPU
		}
	}
	return New(Config{
		Store: st, Launcher: l, Reports: reports, Box: box, Secrets: resolver, Log: log,
		DeprovisionAfter: cfg.DeprovisionAfter, LeaseTTL: cfg.LeaseTTL, RetentionCheck: cfg.RetentionCheck, Scaler: scaler,
	}), nil
}

// ShutdownLauncher is a Launcher that stops watching (and, locally, stops
// its replicators) when the server ends.
type ShutdownLauncher interface {
	Launcher
	Shutdown(ctx context.Context)
}

var (
	_ ShutdownLauncher = (*process.Launcher)(nil)
	_ ShutdownLauncher = (*ecs.Launcher)(nil)
)

// reportBuffer lets launchers report a burst (a server's shutdown stops
// every replicator at once) without waiting on the loop.
const reportBuffer = 64

// OpenLauncher is SLUICE_LAUNCHER's launcher and the channel it reports
// on: replicators as child processes (local; the sluice-replicator binary
// beside the running one unless SLUICE_REPLICATOR_BIN says), or as ECS
// tasks (ecs, configured by SLUICE_ECS_*).
func OpenLauncher(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (ShutdownLauncher, <-chan launch.Report, error) {
	reports := make(chan launch.Report, reportBuffer)
	if cfg.Launcher == "ecs" {
		l, err := ecs.FromEnv(ctx, st, reports, log)
		return l, reports, err
	}
	bin := cfg.ReplicatorBin
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("find the sluice-replicator binary beside this one (set SLUICE_REPLICATOR_BIN): %w", err)
		}
		bin = filepath.Join(filepath.Dir(self), "sluice-replicator")
	}
	l, err := process.New(bin, cfg.StateDir, reports, log)
	if err != nil {
		return nil, nil, err
	}
	l.Env = []string{"SLUICE_REDIS_URL=" + cfg.RedisURL, "SLUICE_LEASE_TTL=" + cfg.LeaseTTL.String()}
	return l, reports, nil
}
