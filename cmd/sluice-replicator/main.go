// Command sluice-replicator runs one replication from a task file in DMS
// terms until it is stopped (SIGTERM or SIGINT: a graceful stop that commits
// the position) or, for a full-load task, until the load is done.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

func main() {
	taskFile := flag.String("task", "", "task file (JSON): endpoints, ReplicationType, TableMappings, ReplicationSettings; - reads standard input (how sluice serve passes it, so passwords never touch the disk)")
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

func run(taskFile, statsFile string, log *slog.Logger) error {
	if taskFile == "" {
		return fmt.Errorf("-task is required: the path of a task file")
	}
	var doc []byte
	var err error
	if taskFile == "-" {
		doc, err = io.ReadAll(os.Stdin)
	} else {
		doc, err = os.ReadFile(taskFile)
	}
	if err != nil {
		return err
	}
	t, err := task.Parse(doc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stats := runtime.NewStats()
	if statsFile != "" {
		done := make(chan struct{})
		defer func() { close(done); writeStats(statsFile, stats) }()
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					writeStats(statsFile, stats)
				}
			}
		}()
	}
	return task.Run(ctx, t, stats, log)
}

// writeStats replaces the stats file atomically, so readers never see half.
func writeStats(path string, stats runtime.StatsReader) {
	b, err := json.MarshalIndent(stats.Snapshot(), "", "  ")
	if err != nil {
		return
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}
