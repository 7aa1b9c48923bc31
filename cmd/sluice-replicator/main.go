// Command sluice-replicator runs one replication from a task file in DMS
// terms until it is stopped (SIGTERM or SIGINT: a graceful stop that commits
// the position) or, for a full-load task, until the load is done.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/sluicedb/sluice/infra/lease"
	"github.com/sluicedb/sluice/infra/telemetry"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

func main() {
	taskFile := flag.String("task", "", "task file (JSON): endpoints, ReplicationType, TableMappings, ReplicationSettings; - reads standard input (how sluice serve passes it, so passwords never touch the disk); redis takes the document a launcher sealed for this replicator (SLUICE_TASK_KEY)")
	statsFile := flag.String("stats-file", "", "write the replication's statistics to this file as JSON every second")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file (for performance work)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice-replicator: -cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*taskFile, *statsFile, log); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-replicator:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(taskFile, statsFile string, log *slog.Logger) (err error) {
	if taskFile == "" {
		return fmt.Errorf("-task is required: the path of a task file")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctl, err := lease.FromEnv(ctx, log)
	if err != nil {
		return err
	}
	if ctl != nil {
		defer func() { ctl.Release(err) }()
	}
	var doc []byte
	switch taskFile {
	case "-":
		doc, err = io.ReadAll(os.Stdin)
	case "redis":
		doc, err = ctl.TakeTask(ctx)
	default:
		doc, err = os.ReadFile(taskFile)
	}
	if err != nil {
		return err
	}
	t, err := task.Parse(doc)
	if err != nil {
		return err
	}
	shutdownTelemetry, err := telemetry.Setup(ctx, "sluice-replicator", telemetry.ReplicationKey.String(t.ReplicationConfigIdentifier))
	if err != nil {
		return err
	}
	defer telemetry.ShutdownAfterStop(shutdownTelemetry)
	runCtx := ctx
	if ctl != nil {
		if err := ctl.Acquire(ctx); err != nil {
			return err
		}
		t.Fence = ctl.Token()
		var cancel context.CancelCauseFunc
		runCtx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go ctl.Hold(runCtx, cancel)
	}
	stats := runtime.NewStats()
	// The launcher says how many capacity units this replicator stands for.
	units, _ := strconv.Atoi(os.Getenv("SLUICE_CAPACITY_UNITS"))
	var unitsFn func() int
	if units > 0 {
		unitsFn = func() int { return units }
	}
	if _, err := telemetry.ObserveReplicator(otel.Meter("github.com/sluicedb/sluice/cmd/sluice-replicator"), stats, unitsFn,
		telemetry.DBAttributes(telemetry.DB(t.SourceEndpoint.EngineName, t.SourceEndpoint.DatabaseName))...); err != nil {
		return err
	}
	runCtx = runtime.WithTraceTarget(runCtx, telemetry.DB(t.TargetEndpoint.EngineName, t.TargetEndpoint.DatabaseName))
	if statsFile != "" || ctl != nil {
		cpu := newCPUMeter()
		stop := lease.Publish(statsFile, ctl, func() ([]byte, error) {
			stats.SetCPU(cpu.cores())
			return json.MarshalIndent(stats.Snapshot(), "", "  ")
		})
		defer stop()
	}
	err = task.Run(runCtx, t, stats, log)
	if cause := context.Cause(runCtx); errors.Is(cause, lease.ErrLost) {
		if err != nil {
			return fmt.Errorf("%w (%v)", cause, err)
		}
		return cause
	}
	return err
}

// cpuMeter measures the cores the process used since it last asked, for
// the autoscaler.
type cpuMeter struct {
	at  time.Time
	cpu time.Duration
}

func newCPUMeter() *cpuMeter { return &cpuMeter{at: time.Now(), cpu: cpuTime()} }

func (m *cpuMeter) cores() float64 {
	now, cpu := time.Now(), cpuTime()
	wall := now.Sub(m.at)
	if wall <= 0 {
		return 0
	}
	used := float64(cpu-m.cpu) / float64(wall)
	m.at, m.cpu = now, cpu
	return used
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
