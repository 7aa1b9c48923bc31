package ecs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

const (
	startedBy      = "sluice"             // RunTask's startedBy: ListTasks -startedBy sluice finds them all
	tagReplication = "sluice:replication" // task tag: the replication ARN
	// handoffTTL bounds how long a sealed task document waits in Redis
	// for its replicator, which may first wait for a host and pull its
	// image.
	handoffTTL = 15 * time.Minute
	// cleanupTimeout bounds the Redis call that cleans up after a failed
	// launch, which runs even when the launch's own context has ended.
	cleanupTimeout = 5 * time.Second
	stopReason     = "stopped by Sluice: StopReplication"
	replacedWhy    = "stopped by Sluice: replaced by a new replicator"
	unrecordWhy    = "stopped by Sluice: its launch could not be recorded"
)

// Launcher runs replicators as ECS tasks.
type Launcher struct {
	api     *awsecs.Client
	st      *store.Store
	cfg     Config
	reports chan<- launch.Report
	log     *slog.Logger

	// locks holds a *sync.Mutex per replication, so that one Launch, Stop
	// or Running of a replication runs at a time without holding up the
	// others during their ECS calls.
	locks sync.Map

	mu    sync.Mutex
	tasks map[string]*task // replication ARN → the task being watched
}

// task is a replicator task being watched.
type task struct {
	arn string
	// stale is the statistics document an earlier replicator of the
	// replication left in Redis (it expires after a few lease TTLs): not
	// this task's, so not reported. Only the watcher uses it.
	stale []byte
	// stopping is set once Stop asked the task to end.
	stopping atomic.Bool
	// holder is its replicator's lease holder name, "" for a task
	// adopted from an earlier server.
	holder string
	cancel context.CancelFunc // ends the watcher
	done   chan struct{}      // closed when the watcher has returned
}

// New returns a launcher that runs replicators with client as cfg says,
// hands their task documents over through st, and sends reports on
// reports. The server builds client with config.LoadDefaultConfig and
// awsecs.NewFromConfig; cfg comes from ConfigFromEnv.
func New(client *awsecs.Client, st *store.Store, cfg Config, reports chan<- launch.Report, log *slog.Logger) (*Launcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if opt, err := redis.ParseURL(cfg.RedisURL); err == nil && opt.Password != "" {
		log.Warn("the tasks' Redis URL carries a password, and it goes into each task's environment, where anyone allowed ecs:DescribeTasks reads it")
	}
	return &Launcher{api: client, st: st, cfg: cfg, reports: reports, log: log, tasks: map[string]*task{}}, nil
}

// Launch starts replication id's replicator as an ECS task. The task document is sealed with a
// key made for this launch and left in Redis for 15 minutes; the task gets
// only the key. A task the replication already has is stopped first: its
// lease lapsed, or an earlier server ran it, and the new replicator takes
// over from it.
func (l *Launcher) Launch(ctx context.Context, id string, doc []byte, plan launch.Size) error {
	defer l.lock(id)()
	if err := l.replace(ctx, id); err != nil {
		return err
	}
	key, sealed, err := seal(doc, id)
	if err != nil {
		return err
	}
	// What an earlier replicator left in Redis is not this one's to report.
	stale, err := l.st.ReplicatorStats(ctx, id)
	if err != nil {
		return fmt.Errorf("read the earlier replicator's statistics: %w", err)
	}
	if _, err := l.st.ReplicatorExit(ctx, id); err != nil {
		return fmt.Errorf("clear the earlier replicator's exit message: %w", err)
	}
	if err := l.st.PutHandoff(ctx, id, sealed, handoffTTL); err != nil {
		return fmt.Errorf("leave the task document for the replicator: %w", err)
	}
	sz := l.size(id, plan)
	in := l.cfg.runTaskInput(id, key, sz)
	holder := launch.NewHolder("ecs")
	co := &in.Overrides.ContainerOverrides[0]
	co.Environment = append(co.Environment, types.KeyValuePair{Name: aws.String(launch.HolderEnv), Value: aws.String(holder)})
	arn, err := l.run(ctx, in)
	if err != nil {
		l.dropHandoff(ctx, id)
		return err
	}
	if err := l.st.PutReplicatorTask(ctx, id, arn); err != nil {
		// Unrecorded, a later server could neither find nor stop it.
		ctx := context.WithoutCancel(ctx)
		if serr := l.stopTask(ctx, arn, unrecordWhy); serr != nil {
			l.log.Warn("could not stop the replicator task whose launch was not recorded", "replication", id, "task", arn, "error", serr)
		}
		l.dropHandoff(ctx, id)
		return fmt.Errorf("record the replicator task %s in Redis: %w", arn, err)
	}
	l.watch(ctx, id, arn, stale, holder)
	l.log.Info("replicator task started", "replication", id, "task", arn, "units", plan.Units, "cpu", sz.cpu, "memory_mib", sz.memMiB)
	return nil
}

// seal seals doc for replication id with a fresh 32-byte key, and returns
// the key (base64) and the sealed document.
func seal(doc []byte, id string) (key, sealed string, err error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails: crypto/rand aborts the program instead
	key = base64.StdEncoding.EncodeToString(raw)
	box, err := secrets.NewBox(key)
	if err != nil {
		return "", "", fmt.Errorf("seal the task document: %w", err)
	}
	sealed, err = box.Seal(string(doc), id)
	if err != nil {
		return "", "", fmt.Errorf("seal the task document: %w", err)
	}
	return key, sealed, nil
}

// dropHandoff removes the task document of a launch that failed, so no
// later task takes it.
func (l *Launcher) dropHandoff(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := l.st.TakeHandoff(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		l.log.Warn("could not remove the task document of a failed launch; it expires by itself", "replication", id, "expires_in", handoffTTL, "error", err)
	}
}

// size is a task's CPU units and memory, and its replicator's GOMEMLIMIT.
type size struct{ cpu, memMiB, limitMiB int }

// size sizes a task for plan: the plan's memory, on the smallest Fargate
// size that holds it. GOMEMLIMIT leaves a tenth of it to what the Go
// runtime does not count (stacks, cgo, the page cache of spilled buffers).
func (l *Launcher) size(id string, plan launch.Size) size {
	want := plan.MemoryLimitMiB
	if want <= 0 {
		want = launch.UnitMiB
	}
	cpu, mem, capped := taskSize(want)
	if l.cfg.LaunchType != types.LaunchTypeFargate {
		// An EC2 host takes any memory; the CPU still follows the Fargate
		// sizes, so a capacity unit means the same on both.
		mem, capped = want, false
	}
	if capped {
		l.log.Warn("the plan needs more memory than the largest Fargate task has: the task gets the largest",
			"replication", id, "plan_memory_mib", want, "task_memory_mib", mem, "cpu", cpu)
	}
	return size{cpu: cpu, memMiB: mem, limitMiB: min(want, mem) * 9 / 10}
}

// runTaskInput is the RunTask call for replication id's replicator. It
// holds the one-time key but never the task document.
func (c Config) runTaskInput(id, key string, sz size) *awsecs.RunTaskInput {
	env := func(name, value string) types.KeyValuePair {
		return types.KeyValuePair{Name: aws.String(name), Value: aws.String(value)}
	}
	in := &awsecs.RunTaskInput{
		Cluster:        aws.String(c.Cluster),
		TaskDefinition: aws.String(c.TaskDefinition),
		LaunchType:     c.LaunchType,
		Count:          aws.Int32(1),
		StartedBy:      aws.String(startedBy),
		// The value rules (256 characters of letters, digits, spaces and
		// _.:/=+-@, not starting with aws:) admit any replication ARN.
		Tags: []types.Tag{{Key: aws.String(tagReplication), Value: aws.String(id)}},
		Overrides: &types.TaskOverride{
			Cpu:    aws.String(strconv.Itoa(sz.cpu)),
			Memory: aws.String(strconv.Itoa(sz.memMiB)),
			ContainerOverrides: []types.ContainerOverride{{
				Name:    aws.String(c.Container),
				Command: []string{"-task", "redis"},
				Environment: []types.KeyValuePair{
					env("SLUICE_REDIS_URL", c.RedisURL),
					env("SLUICE_REPLICATION_ARN", id),
					env("SLUICE_TASK_KEY", key),
					env("SLUICE_LEASE_TTL", c.LeaseTTL.String()),
					env("GOMEMLIMIT", fmt.Sprintf("%dMiB", sz.limitMiB)),
				},
			}},
		},
		// ClientToken is left to the SDK, which fills one per call and
		// keeps it across its retries: a retried RunTask does not start a
		// second task.
	}
	if len(c.Subnets) > 0 {
		vpc := &types.AwsVpcConfiguration{Subnets: c.Subnets, SecurityGroups: c.SecurityGroups}
		if c.LaunchType == types.LaunchTypeFargate {
			vpc.AssignPublicIp = types.AssignPublicIpDisabled
			if c.AssignPublicIP {
				vpc.AssignPublicIp = types.AssignPublicIpEnabled
			}
		}
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: vpc}
	}
	return in
}

// run calls RunTask and returns the task's ARN.
func (l *Launcher) run(ctx context.Context, in *awsecs.RunTaskInput) (string, error) {
	where := fmt.Sprintf("cluster %s, task definition %s", l.cfg.Cluster, l.cfg.TaskDefinition)
	out, err := l.api.RunTask(ctx, in)
	switch {
	case err != nil:
		return "", fmt.Errorf("run the replicator task (%s): %w", where, err)
	case len(out.Failures) > 0:
		return "", fmt.Errorf("ECS did not start the replicator task (%s): %s", where, failures(out.Failures))
	case len(out.Tasks) == 0 || aws.ToString(out.Tasks[0].TaskArn) == "":
		return "", fmt.Errorf("ECS started no replicator task and gave no reason (%s): check that the cluster has room for the task", where)
	}
	return *out.Tasks[0].TaskArn, nil
}

func failures(fs []types.Failure) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(aws.ToString(f.Reason))
		if d := aws.ToString(f.Detail); d != "" {
			b.WriteString(": " + d)
		}
		if a := aws.ToString(f.Arn); a != "" {
			b.WriteString(" (" + a + ")")
		}
	}
	return b.String()
}

// replace stops the task replication id has, if any, and forgets it.
func (l *Launcher) replace(ctx context.Context, id string) error {
	arn := ""
	l.mu.Lock()
	if t := l.tasks[id]; t != nil {
		// Its reports are no longer this replication's.
		t.cancel()
		delete(l.tasks, id)
		arn = t.arn
	}
	l.mu.Unlock()
	if arn == "" {
		var err error
		if arn, err = l.recorded(ctx, id); err != nil {
			return fmt.Errorf("look up the replication's earlier task: %w", err)
		}
		if arn == "" {
			return nil
		}
	}
	// The new replicator fences it off either way; stopping it ends it
	// sooner (a healthy one commits and hands its lease over) and keeps it
	// from taking the new task's document if it has not started yet.
	l.log.Warn("replacing a replicator task", "replication", id, "old_task", arn)
	if err := l.stopTask(ctx, arn, replacedWhy); err != nil && !notFound(err) {
		l.log.Warn("could not stop the replaced replicator task; the new replicator fences it off", "replication", id, "task", arn, "error", err)
	}
	if err := l.forget(ctx, id, arn); err != nil {
		return fmt.Errorf("forget the replaced task %s: %w", arn, err)
	}
	return nil
}

// Stop asks replication id's replicator to stop gracefully: StopTask, which has ECS send the
// replicator SIGTERM, its graceful stop. The watcher reports the end. A task
// an earlier server launched is watched from now on.
func (l *Launcher) Stop(ctx context.Context, id string) error {
	defer l.lock(id)()
	t := l.watched(id)
	if t == nil {
		arn, err := l.recorded(ctx, id)
		if err != nil {
			return fmt.Errorf("look up the replication's task: %w", err)
		}
		if arn == "" {
			return nil
		}
		t = l.adopt(id, arn)
	}
	t.stopping.Store(true)
	if err := l.stopTask(ctx, t.arn, stopReason); err != nil {
		if notFound(err) {
			return nil // gone already; the watcher reports it ended
		}
		return fmt.Errorf("stop the replicator task %s: %w", t.arn, err)
	}
	l.log.Info("stopping the replicator task", "replication", id, "task", t.arn)
	return nil
}

func (l *Launcher) stopTask(ctx context.Context, arn, reason string) error {
	_, err := l.api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(l.cfg.Cluster), Task: aws.String(arn), Reason: aws.String(reason)})
	return err
}

// notFound says whether ECS answered that it does not know the task.
func notFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidParameterException" && strings.Contains(ae.ErrorMessage(), "not found")
}

// Running says whether replication id has a replicator task. A task an
// earlier server launched counts, and is watched from now on: its reports
// arrive as if this server had launched it (the last at once if it ended
// meanwhile).
func (l *Launcher) Running(ctx context.Context, id string) (bool, error) {
	defer l.lock(id)()
	if l.watched(id) != nil {
		return true, nil
	}
	arn, err := l.recorded(ctx, id)
	if err != nil {
		return false, fmt.Errorf("look up the replication's task in Redis: %w", err)
	}
	if arn == "" {
		return false, nil
	}
	l.adopt(id, arn)
	return true, nil
}

// Shutdown stops watching the tasks and waits for the watchers to return,
// up to ctx. Unlike the local launcher's, it leaves the replicators running:
// they do not depend on this server, and the next one finds them in Redis
// (Running, Stop) or replaces them (Launch).
func (l *Launcher) Shutdown(ctx context.Context) {
	l.mu.Lock()
	all := l.tasks
	l.tasks = map[string]*task{}
	l.mu.Unlock()
	for _, t := range all {
		t.cancel()
	}
	for _, t := range all {
		select {
		case <-t.done:
		case <-ctx.Done():
			return
		}
	}
}

// lock takes replication id's lock and returns its unlock.
func (l *Launcher) lock(id string) (unlock func()) {
	m, _ := l.locks.LoadOrStore(id, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// watched returns the task of id being watched, nil if none.
func (l *Launcher) watched(id string) *task {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tasks[id]
}

// adopt watches a task an earlier server launched.
func (l *Launcher) adopt(id, arn string) *task {
	l.log.Info("watching a replicator task an earlier server started", "replication", id, "task", arn)
	return l.watch(context.Background(), id, arn, nil, "")
}

// recorded returns the task ARN recorded for replication id, "" if none.
func (l *Launcher) recorded(ctx context.Context, id string) (string, error) {
	return l.st.ReplicatorTask(ctx, id)
}

// forget deletes replication id's record of task arn, leaving a record of a
// newer task alone.
func (l *Launcher) forget(ctx context.Context, id, arn string) error {
	return l.st.ForgetReplicatorTask(ctx, id, arn)
}
