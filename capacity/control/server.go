package control

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
)

// Launcher starts and stops replicators: infra/process (child processes)
// and infra/ecs (ECS tasks) are the two.
type Launcher interface {
	// Launch starts the replicator of replication id with a task document
	// (runtime/task JSON; it holds passwords, so it must not be written
	// where others can read it or logged). Reports arrive on the channel
	// given to the launcher's constructor, at least every few seconds while
	// it runs and once when it ends. Launching an id that has a replicator
	// replaces it: its lease lapsed, so the new one fences it off, and its
	// reports are dropped.
	Launch(ctx context.Context, id string, task []byte, size launch.Size) error
	// Stop asks replication id's replicator to stop gracefully: it commits
	// its position and ends, and the last report says so. Stopping an id
	// that does not run is not an error.
	Stop(ctx context.Context, id string) error
	// Running says whether id has a replicator. A launcher that finds one
	// an earlier server launched watches it from then on.
	Running(ctx context.Context, id string) (bool, error)
}

// Loop is a job a Server runs at an interval under its supervision, beside
// its own (local schedules, in sluice serve).
type Loop struct {
	Name     string
	Interval time.Duration
	Do       func(context.Context) error
}

// Config is what a Server is built from.
type Config struct {
	Store    *store.Store
	Launcher Launcher
	// Reports is the channel the Launcher reports on.
	Reports <-chan launch.Report
	Box     *secrets.Box      // opens sealed endpoint passwords; may be nil
	Secrets *secrets.Resolver // resolves SecretsManagerSecretId; may be nil
	Log     *slog.Logger
	// DeprovisionAfter is how long a stopped replication keeps its
	// capacity (SLUICE_DEPROVISION_AFTER); zero releases it at once.
	DeprovisionAfter time.Duration
	// LeaseTTL is how long a replicator's lease lasts unrenewed
	// (SLUICE_LEASE_TTL); a launched replicator has this plus launchGrace
	// to take it.
	LeaseTTL time.Duration
	// RetentionCheck is how often the WAL the replications' slots hold is
	// measured (SweepRetention); zero: every 30 s.
	RetentionCheck time.Duration
	// Scaler resizes running replications by their utilization; nil
	// leaves them at the size they started with.
	Scaler *capacity.Scaler
	// Loops run beside the server's own.
	Loops []Loop
}

// Server runs replications: Start, Stop and Reload are what the API asks
// (api.Control); Run is the loop that carries them out.
type Server struct {
	Config
	// starts are the start chains the API asked for, begun by Run under
	// its own context (a request's context ends with the request).
	starts chan string
	// chains counts the start chains under way; Run waits for them.
	chains sync.WaitGroup
	runs   runs
	// detached is set when the server shuts down: the replicators it
	// stops then end their process, not their replication, which the next
	// server adopts.
	detached atomic.Bool
}

// New returns a server; it does nothing until Run.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{Config: cfg, starts: make(chan string)}
}

// chainTimeout bounds a start chain: two connection tests, the check, the
// analysis and a launch take seconds; one that hangs must not hold a
// server's shutdown or a Lambda's pass.
const chainTimeout = time.Minute

// Run runs the control loop until ctx ends: it takes over what a previous
// server left (Adopt), then records the launcher's reports and sweeps
// deprovision timers, leases and queued requests, each at its interval and
// once at the start. It returns once every loop has, and every start chain
// it began has finished; an error only when the adoption fails.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.consume(gctx); return nil })
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if err := s.Adopt(gctx, work); err != nil {
		cancelWork()
		s.chains.Wait()
		return errors.Join(err, g.Wait())
	}
	loops := append([]Loop{
		{"deprovision sweep", min(max(s.DeprovisionAfter/2, time.Second), time.Minute), s.Sweep},
		{"lease sweep", max(s.LeaseTTL/2, 100*time.Millisecond), s.SweepLeases},
		{"source drops", 2 * time.Second, s.SweepDrops},
		{"source retention", cmp.Or(s.RetentionCheck, 30*time.Second), s.SweepRetention},
		{"queued requests", 500 * time.Millisecond, func(ctx context.Context) error { return s.Consume(ctx, work) }},
	}, s.Loops...)
	for _, l := range loops {
		g.Go(func() error { s.every(gctx, l); return nil })
	}
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case arn := <-s.starts:
				s.begin(work, arn)
			}
		}
	})
	err := g.Wait()
	s.chains.Wait()
	return err
}

// Pass runs the control loop for window, for a process that cannot run it
// all the time (the schedule function in AWS, every minute): it takes over
// the replicators running elsewhere (ECS tasks; those that should run and
// do not are launched), records their reports, carries out queued
// requests, and sweeps the leases and deprovision timers; the start chains
// it began finish after the window.
func (s *Server) Pass(ctx context.Context, window time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	return s.Run(ctx)
}

// Detach makes the replicators' exits from now on leave their
// replications' statuses alone: the server is shutting down and stops
// them, and the next server start adopts them (Adopt).
func (s *Server) Detach() { s.detached.Store(true) }

// every runs a loop's job at once and then at its interval until ctx ends.
// A failed run is logged and the next goes on: a sweep that failed on a
// Redis hiccup is retried, not fatal to the server.
func (s *Server) every(ctx context.Context, l Loop) {
	tick := time.NewTicker(l.Interval)
	defer tick.Stop()
	for {
		if err := l.Do(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn(l.Name+" failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drainTimeout bounds the recording of the reports that were already sent
// when the server was asked to stop.
const drainTimeout = 5 * time.Second

// consume records the launcher's reports until ctx ends, then those
// already sent (the last ones of the replicators the server stopped).
func (s *Server) consume(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			defer cancel()
			for {
				select {
				case r := <-s.Reports:
					s.record(drain, r)
				default:
					return
				}
			}
		case r := <-s.Reports:
			s.record(ctx, r)
		}
	}
}

func (s *Server) record(ctx context.Context, r launch.Report) {
	rp := report{Report: r}
	if len(r.Stats) > 0 {
		var snap runtime.Snapshot
		if err := json.Unmarshal(r.Stats, &snap); err != nil {
			s.Log.Warn("a replicator's statistics do not parse", "replication", r.ID, "error", err)
		} else {
			rp.stats = &snap
		}
	}
	if err := s.report(ctx, rp); err != nil && ctx.Err() == nil {
		s.Log.Warn("could not record a replicator's report", "replication", r.ID, "error", err)
	}
}
