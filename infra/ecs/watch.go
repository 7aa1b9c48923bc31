package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/sluicedb/sluice/infra/launch"
)

// missingPolls is how many describes in a row must miss a task before it
// counts as gone: DescribeTasks is eventually consistent just after RunTask,
// and ECS forgets a stopped task after about an hour.
const missingPolls = 15

// watch starts watching replication id's task arn and returns it. The
// watcher outlives ctx (it runs until the task ends or Shutdown) but keeps
// its values.
func (l *Launcher) watch(ctx context.Context, id, arn string, stale []byte, holder string) *task {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &task{arn: arn, stale: stale, holder: holder, cancel: cancel, done: make(chan struct{})}
	l.mu.Lock()
	l.tasks[id] = t
	l.mu.Unlock()
	go l.poll(ctx, id, t)
	return t
}

// poll describes the task and reads its replicator's statistics every
// PollInterval, and reports them, until the task has stopped.
func (l *Launcher) poll(ctx context.Context, id string, t *task) {
	defer close(t.done)
	tick := time.NewTicker(l.cfg.PollInterval)
	defer tick.Stop()
	var failing bool // describing fails; logged once
	missing := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		et, err := l.describe(ctx, t.arn)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				l.log.Warn("could not describe the replicator task; trying again", "replication", id, "task", t.arn, "error", err)
			}
			failing = true
		default:
			if failing {
				l.log.Info("describing the replicator task works again", "replication", id, "task", t.arn)
			}
			failing = false
			if et == nil {
				missing++
			} else {
				missing = 0
			}
			if missing >= missingPolls || (et != nil && aws.ToString(et.LastStatus) == "STOPPED") {
				l.finish(ctx, id, t, et)
				return
			}
		}
		if s := l.stats(ctx, id, t); s != nil && l.watched(id) == t {
			l.send(ctx, launch.Report{ID: id, Stats: s})
		}
	}
}

// describe returns the task, or nil when ECS does not know it.
func (l *Launcher) describe(ctx context.Context, arn string) (*types.Task, error) {
	out, err := l.api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(l.cfg.Cluster), Tasks: []string{arn}})
	if err != nil {
		return nil, err
	}
	for i, et := range out.Tasks {
		if aws.ToString(et.TaskArn) == arn {
			return &out.Tasks[i], nil
		}
	}
	for _, f := range out.Failures {
		if aws.ToString(f.Reason) != "MISSING" {
			return nil, fmt.Errorf("ECS did not describe the task: %s", failures([]types.Failure{f}))
		}
	}
	return nil, nil
}

// stats returns the replicator's last statistics, nil when there are none
// yet (or only an earlier replicator's).
func (l *Launcher) stats(ctx context.Context, id string, t *task) json.RawMessage {
	b, err := l.st.ReplicatorStats(ctx, id)
	if err != nil || b == nil {
		return nil
	}
	if t.stale != nil {
		if bytes.Equal(b, t.stale) {
			return nil
		}
		t.stale = nil
	}
	if !json.Valid(b) {
		return nil
	}
	return b
}

// finish reports the end of the task, unless it was replaced meanwhile, and
// forgets it.
func (l *Launcher) finish(ctx context.Context, id string, t *task, et *types.Task) {
	if l.watched(id) != t {
		return // replaced: the exit message and the record are the new task's
	}
	r := launch.Report{ID: id, Stats: l.stats(ctx, id, t), Exited: true, Holder: t.holder}
	r.ExitErr, r.Killed = ended(t.arn, et, l.cfg.Container, t.stopping.Load())
	msg, err := l.st.ReplicatorExit(ctx, id)
	if err != nil {
		l.log.Warn("could not read why the replicator ended", "replication", id, "task", t.arn, "error", err)
	}
	if msg != "" {
		r.ExitErr = msg
	}
	if err := l.forget(ctx, id, t.arn); err != nil {
		l.log.Warn("could not delete the record of an ended replicator task; the next Launch replaces it", "replication", id, "task", t.arn, "error", err)
	}
	l.mu.Lock()
	current := l.tasks[id] == t
	if current {
		delete(l.tasks, id)
	}
	l.mu.Unlock()
	if !current {
		return
	}
	l.log.Info("replicator task ended", "replication", id, "task", t.arn, "error", r.ExitErr, "killed", r.Killed)
	l.send(ctx, r)
}

// ended says how a stopped task ended, from ECS's side: the error to report
// (empty for a clean end) and whether it was killed (a signal it did not
// ask for, the OOM killer, its host gone), which the lease sweep answers
// by launching another. et is nil when ECS no longer knows the task;
// stopping says Stop asked it to end.
func ended(arn string, et *types.Task, container string, stopping bool) (exitErr string, killed bool) {
	if et == nil {
		if stopping {
			return "", false
		}
		return fmt.Sprintf("ECS no longer knows the replicator task %s: it ended more than about an hour ago, or never started", arn), false
	}
	reason := aws.ToString(et.StoppedReason)
	var code *int32
	for _, c := range et.Containers {
		if aws.ToString(c.Name) != container {
			continue
		}
		code = c.ExitCode
		if r := aws.ToString(c.Reason); r != "" && !strings.Contains(reason, r) {
			reason = strings.TrimPrefix(reason+": "+r, ": ")
		}
	}
	if reason == "" {
		reason = "ECS gave no reason"
	}
	oom := strings.Contains(reason, "OutOfMemory")
	switch {
	case code != nil && *code == 0:
		return "", false
	case code != nil:
		// 128+N is death by signal N.
		return fmt.Sprintf("the replicator task stopped: %s (exit code %d)", reason, *code), oom || (*code > 128 && *code < 128+65)
	case stopping:
		// Stopped before its container ran: nothing was replicating.
		return "", false
	default:
		// No exit code: the container never ran (no image, no room), or it
		// ran and its host went away under it.
		return fmt.Sprintf("the replicator task stopped: %s (no exit code)", reason), oom || et.StartedAt != nil
	}
}

func (l *Launcher) send(ctx context.Context, r launch.Report) {
	select {
	case l.reports <- r:
	case <-ctx.Done():
	}
}
