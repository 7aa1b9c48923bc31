// Package process launches replicators as child processes of `sluice
// serve`: the task goes in on standard input (so passwords never touch the
// disk), statistics come back through a stats file read every second, and a
// graceful stop is SIGTERM. It is one of the launchers capacity/control
// drives.
package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/infra/launch"
)

// Launcher runs replicators as local processes.
type Launcher struct {
	bin     string // the sluice-replicator binary
	dir     string // stats and log files
	reports chan<- launch.Report
	log     *slog.Logger
	// Env is added to every replicator's environment: the control plane's
	// Redis and lease TTL, so the replicator holds its lease.
	Env []string

	mu    sync.Mutex
	procs map[string]*proc
	seq   int // numbers the launches, for their stats files
}

type proc struct {
	cmd    *exec.Cmd
	stats  string
	holder string // its lease holder name
	done   chan struct{}
}

// New returns a launcher that runs bin, keeps its files in dir, and sends
// reports on reports.
func New(bin, dir string, reports chan<- launch.Report, log *slog.Logger) (*Launcher, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the replicator binary %s is missing (build it with `make build`, or set SLUICE_REPLICATOR_BIN): %w", bin, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the replicators' directory %s: %w", dir, err)
	}
	return &Launcher{bin: bin, dir: dir, reports: reports, log: log, procs: map[string]*proc{}}, nil
}

// fileName turns an ARN into a file name.
func fileName(id string) string {
	return strings.NewReplacer(":", "_", "/", "_").Replace(id)
}

// Launch starts replication id's replicator with the task document on its
// standard input. An id that has a replicator gets a new one.
func (l *Launcher) Launch(ctx context.Context, id string, task []byte, size launch.Size) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.procs[id]; old != nil {
		// Its lease lapsed (frozen, or cut off from Redis): the new
		// replicator fences it off and it stops by itself when it can
		// run again. Its reports are no longer this replication's.
		l.log.Warn("replacing a replicator that lost its lease", "replication", id, "old_pid", old.cmd.Process.Pid)
		delete(l.procs, id)
	}
	l.seq++
	base := filepath.Join(l.dir, fileName(id))
	stats := fmt.Sprintf("%s.%d.stats.json", base, l.seq)
	logf, err := os.OpenFile(base+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the replicator log: %w", err)
	}
	tail := &lastLines{}
	cmd := exec.Command(l.bin, "-task", "-", "-stats-file", stats)
	cmd.Stdin = bytes.NewReader(task)
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, tail)
	holder := launch.NewHolder("process")
	cmd.Env = append(append(childEnv(), l.Env...), fmt.Sprintf("GOMEMLIMIT=%dMiB", size.MemoryLimitMiB), "SLUICE_REPLICATION_ARN="+id,
		fmt.Sprintf("SLUICE_CAPACITY_UNITS=%d", size.Units), launch.HolderEnv+"="+holder)
	// A replicator must not outlive the server that watches it: nobody
	// would stop it or see it fail.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start the replicator: %w", err)
	}
	p := &proc{cmd: cmd, stats: stats, holder: holder, done: make(chan struct{})}
	l.procs[id] = p
	l.log.Info("replicator started", "replication", id, "pid", cmd.Process.Pid, "units", size.Units)
	go l.watch(id, p, logf, tail)
	return nil
}

// watch reports the replicator's statistics every second until it ends.
func (l *Launcher) watch(id string, p *proc, logf *os.File, tail *lastLines) {
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if s := readStats(p.stats); s != nil && l.current(id, p) {
				l.reports <- launch.Report{ID: id, Stats: s, Holder: p.holder}
			}
		case err := <-exited:
			logf.Close()
			r := launch.Report{ID: id, Stats: readStats(p.stats), Exited: true, Holder: p.holder}
			_ = os.Remove(p.stats)
			if err != nil {
				r.ExitErr = tail.last()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						r.Killed = true
					}
				}
				if r.ExitErr == "" {
					r.ExitErr = fmt.Sprintf("the replicator ended: %v", err)
				}
			}
			l.mu.Lock()
			current := l.procs[id] == p
			if current {
				delete(l.procs, id)
			}
			l.mu.Unlock()
			// done closes after the last report is sent, so that a
			// Shutdown that waited for it knows the report is on its
			// way to the control loop.
			defer close(p.done)
			if !current {
				l.log.Info("a replaced replicator ended", "replication", id, "pid", p.cmd.Process.Pid, "error", r.ExitErr)
				return
			}
			l.log.Info("replicator ended", "replication", id, "error", r.ExitErr)
			l.reports <- r
			return
		}
	}
}

// childEnv is the server's environment without its keys: a replicator
// needs neither the master key nor the API's secret key.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY", "SLUICE_ACCESS_KEY_ID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// current says whether p is id's replicator, not one replaced since.
func (l *Launcher) current(id string, p *proc) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[id] == p
}

// readStats returns the replicator's statistics document, nil when there is
// none yet or it is being rewritten.
func readStats(path string) json.RawMessage {
	b, err := os.ReadFile(path)
	if err != nil || !json.Valid(b) {
		return nil
	}
	return b
}

// Stop asks replication id's replicator to stop gracefully (SIGTERM); its
// last report says how it ended. An id without one is not an error.
func (l *Launcher) Stop(ctx context.Context, id string) error {
	l.mu.Lock()
	p := l.procs[id]
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return nil // it has just ended; its last report says how
	}
	return nil
}

// Running says whether replication id has a replicator.
func (l *Launcher) Running(_ context.Context, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[id] != nil, nil
}

// Shutdown stops every replicator gracefully and waits for them, up to ctx.
func (l *Launcher) Shutdown(ctx context.Context) {
	l.mu.Lock()
	var all []*proc
	for _, p := range l.procs {
		all = append(all, p)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	l.mu.Unlock()
	for _, p := range all {
		select {
		case <-p.done:
		case <-ctx.Done():
			return
		}
	}
}

// lastLines keeps the last line the replicator wrote that reads as its
// error, which becomes the replication's failure message.
type lastLines struct {
	mu   sync.Mutex
	line string
	part []byte // an unfinished line
}

func (t *lastLines) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		if line, ok := strings.CutPrefix(string(t.part[:i]), "sluice-replicator: "); ok {
			t.line = line
		}
		t.part = t.part[i+1:]
	}
	if len(t.part) > 64<<10 {
		t.part = nil // a runaway line is not an error message
	}
	return len(b), nil
}

func (t *lastLines) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line
}
