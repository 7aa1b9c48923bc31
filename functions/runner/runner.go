// Package runner carries a replication from StartReplication to its end: it
// prepares the task, tests the connections, plans the capacity, launches the
// replicator, and turns the launcher's reports (statistics, checkpoint,
// exit) into the replication's status in the store. Each step is a
// compare-and-set from the status the previous step left, so a
// StopReplication that arrives at any point wins cleanly.
package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/functions/analyze"
	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/task"
)

// Stop reasons, as DMS words them.
const (
	StopNormal         = "Stop Reason NORMAL"
	StopFullLoadOnly   = "Stop Reason FULL_LOAD_ONLY_FINISHED"
	StopFatal          = "Stop Reason FATAL_ERROR"
	StopAtServerTime   = "Stop Reason STOPPED_AT_SERVER_TIME"
	StopAtCommitTime   = "Stop Reason STOPPED_AT_COMMIT_TIME"
	connectTestTimeout = 10 * time.Second
)

// Runner runs replications. Start and Stop are what the API calls; Run
// consumes the launcher's reports.
type Runner struct {
	Store    *store.Store
	Launcher capacity.Launcher
	Box      *secrets.Box      // opens sealed endpoint passwords; may be nil
	Secrets  *secrets.Resolver // resolves SecretsManagerSecretId; may be nil
	Log      *slog.Logger
	// DeprovisionAfter is how long a stopped replication keeps its
	// capacity (SLUICE_DEPROVISION_AFTER); zero releases it at once.
	DeprovisionAfter time.Duration
	// LeaseTTL is how long a replicator's lease lasts unrenewed
	// (SLUICE_LEASE_TTL); a launched replicator has this plus launchGrace
	// to take it.
	LeaseTTL time.Duration
	// Scaler resizes running replications by their utilization; nil
	// leaves them at the size they started with.
	Scaler *capacity.Scaler
	// ctx bounds the start chains Start runs in the background.
	ctx context.Context

	// chains are the start chains under way.
	chains sync.WaitGroup

	mu sync.Mutex
	// restarting holds the replications whose replicator Reload stopped
	// to launch it again.
	restarting map[string]bool
	// bases are the statistics each run counts on from (see
	// store.CarryTableStats), kept here so a report does not read them
	// from Redis every second.
	bases map[string][]store.TableStatistics
	// resizes holds the plans of replications being relaunched at
	// another size (the autoscaler's decision), until they are.
	resizes map[string]capacity.Plan
	// bounds are the running replications' Min/MaxCapacityUnits, read
	// once a run: a config cannot change while its replication runs.
	bounds map[string][2]int
	// detached is set when the server shuts down: the replicators it stops
	// then end their process, not their replication, which the next server
	// adopts.
	detached bool
}

// Detach makes the replicators' exits from now on leave their
// replications' statuses alone: the server is shutting down and stops
// them, and the next server start adopts them (Adopt).
func (r *Runner) Detach() {
	r.mu.Lock()
	r.detached = true
	r.mu.Unlock()
}

// Adopt takes over the replications a previous server left in flight, at
// server start: a running replication gets its replicator again (it
// resumes from the target's position), a start that was under way starts
// over, and a stop that was under way is recorded as done (the replicator
// was stopped with the server).
func (r *Runner) Adopt(ctx context.Context) error {
	all, err := r.Store.Replications(ctx)
	if err != nil {
		return err
	}
	for _, rep := range all {
		arn := rep.ReplicationConfigArn
		switch rep.Status {
		case store.StatusRunning, store.StatusReplicationStarting:
			if r.Launcher.Running(arn) {
				// An ECS task outlives the server: keep it, and watch it.
				r.Log.Info("adopting a running replicator", "replication", rep.ReplicationConfigIdentifier)
				continue
			}
			r.Log.Info("adopting a running replication", "replication", rep.ReplicationConfigIdentifier)
			if err := r.relaunch(ctx, arn); err != nil {
				return err
			}
		case store.StatusInitializing, store.StatusPreparingMetadata, store.StatusTestingConnection,
			store.StatusFetchingMetadata, store.StatusCalculatingCap, store.StatusProvisioningCap:
			r.Log.Info("starting over a start the previous server did not finish", "replication", rep.ReplicationConfigIdentifier)
			_, err := r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
				rep.Status = store.StatusInitializing
				return nil
			})
			if err != nil {
				return err
			}
			if err := r.Start(ctx, arn); err != nil {
				return err
			}
		case store.StatusStopping:
			if r.Launcher.Running(arn) {
				// Its replicator outlived the server (an ECS task): stop
				// it; its end is reported when it comes.
				if err := r.Launcher.Stop(ctx, arn); err != nil {
					return err
				}
				continue
			}
			_, err := r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
				if rep.Status == store.StatusStopping {
					r.ended(rep, StopNormal, "")
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// errStopped ends a start chain whose replication was stopped meanwhile.
var errStopped = errors.New("stopped while starting")

// Start implements api.Control.
func (r *Runner) Start(_ context.Context, arn string) error {
	// The chain outlives the request: it runs under the runner's context.
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	r.chains.Add(1)
	go func() {
		defer r.chains.Done()
		r.start(ctx, arn)
	}()
	return nil
}

// Stop implements api.Control.
func (r *Runner) Stop(ctx context.Context, arn string) error {
	return r.Launcher.Stop(ctx, arn)
}

// Reload implements api.Control. The replicator stops gracefully, its
// position committed; when its exit is reported it is launched again with
// the request in its task, reloads the tables, and goes on from there.
func (r *Runner) Reload(ctx context.Context, arn string) error {
	r.mu.Lock()
	if r.restarting == nil {
		r.restarting = map[string]bool{}
	}
	r.restarting[arn] = true
	r.mu.Unlock()
	if err := r.Launcher.Stop(ctx, arn); err != nil {
		r.takeRestart(arn)
		return err
	}
	return nil
}

func (r *Runner) isDetached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.detached
}

// carry starts a run's statistics and keeps its base.
func (r *Runner) carry(ctx context.Context, arn string, resumed bool) error {
	base, err := r.Store.CarryTableStats(ctx, arn, resumed)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bases == nil {
		r.bases = map[string][]store.TableStatistics{}
	}
	r.bases[arn] = base
	return nil
}

// base returns the statistics arn's current run counts on from.
func (r *Runner) base(ctx context.Context, arn string) ([]store.TableStatistics, error) {
	r.mu.Lock()
	b, ok := r.bases[arn]
	r.mu.Unlock()
	if ok {
		return b, nil
	}
	// Launched before this runner existed: the base is in Redis.
	b, err := r.Store.TableStatsBase(ctx, arn)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.bases == nil {
		r.bases = map[string][]store.TableStatistics{}
	}
	r.bases[arn] = b
	r.mu.Unlock()
	return b, nil
}

// takeRestart says whether Reload asked for arn's replicator to be
// launched again, and forgets it.
func (r *Runner) takeRestart(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.restarting[arn]
	delete(r.restarting, arn)
	return was
}

// launchGrace is how long a replicator may take to start and take its
// lease (an ECS task pulls its image first).
const launchGrace = 2 * time.Minute

// launch starts the replicator and gives it until its lease is expected.
func (r *Runner) launch(ctx context.Context, arn string, doc []byte, p capacity.Plan) (err error) {
	ctx, span := otel.Tracer("github.com/sluicedb/sluice/functions/runner").Start(ctx, "sluice.launch",
		trace.WithAttributes(telemetry.ReplicationKey.String(arn), telemetry.UnitsKey.Int(p.Units)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if err := r.Store.ExpectLease(ctx, arn, r.LeaseTTL+launchGrace); err != nil {
		return err
	}
	return r.Launcher.Launch(ctx, arn, doc, p)
}

// relaunch launches a running replication's replicator again: after
// Reload stopped it, when a new server adopts it, or when its replicator
// lost its lease.
func (r *Runner) relaunch(ctx context.Context, arn string) error {
	r.mu.Lock()
	resize, resizing := r.resizes[arn]
	delete(r.resizes, arn)
	r.mu.Unlock()
	err := func() error {
		_, t, cfg, err := r.task(ctx, arn)
		if err != nil {
			return err
		}
		rep, err := r.Store.Replication(ctx, arn)
		if err != nil {
			return err
		}
		var p capacity.Plan
		var doc []byte
		switch pd := rep.ProvisionData; {
		case resizing:
			p = resize
		case pd != nil && pd.ProvisionedCapacityUnits > 0:
			// The capacity it runs with stays until the autoscaler
			// changes it.
			p = capacity.ForUnits(pd.ProvisionedCapacityUnits, pd.ReasonForNewProvisioningData)
		default:
			if p, doc, err = r.size(ctx, t, cfg); err != nil {
				return err
			}
		}
		if doc == nil {
			if err := t.Size(p.BufferMiB, p.FullLoadParallelism); err != nil {
				return err
			}
			if doc, err = json.Marshal(t); err != nil {
				return err
			}
		}
		if err := r.carry(ctx, arn, true); err != nil {
			return err
		}
		if err := r.launch(ctx, arn, doc, p); err != nil {
			return err
		}
		if !resizing {
			return nil
		}
		_, err = r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			now := store.At(time.Now())
			rep.ProvisionData = &store.ProvisionData{
				ProvisionState: store.Provisioned, ProvisionedCapacityUnits: p.Units, DateProvisioned: now,
				ReasonForNewProvisioningData: p.Reason,
			}
			return nil
		})
		return err
	}()
	if err == nil {
		return nil
	}
	r.Log.Warn("could not launch the replicator again", "replication", arn, "error", err)
	_, uerr := r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		r.ended(rep, StopFatal, "launch the replicator again: "+err.Error())
		return nil
	})
	return uerr
}

func startTime(t *store.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// analysisWindow is how long the source's change rate is sampled.
const analysisWindow = time.Second

// size plans a replication's capacity from its source (within its
// ComputeConfig) and returns the task document sized by the plan. A source
// that cannot be analyzed gets the config's minimum, and the reason says
// why; the replicator then reports what is wrong with it.
func (r *Runner) size(ctx context.Context, t *task.Task, cfg *store.Config) (capacity.Plan, []byte, error) {
	minU, maxU := unitRange(cfg)
	var p capacity.Plan
	md, err := analyze.Analyze(ctx, t, analysisWindow, r.Log)
	if err == nil {
		p, err = capacity.Size(md, minU, maxU)
	}
	if err != nil {
		r.Log.Warn("sizing from the source failed; using the config's minimum capacity", "replication", t.ReplicationConfigIdentifier, "error", err)
		p = capacity.Fixed(minU, maxU)
		p.Reason += " The source could not be analyzed: " + err.Error()
	}
	if err := t.Size(p.BufferMiB, p.FullLoadParallelism); err != nil {
		return p, nil, err
	}
	doc, err := json.Marshal(t)
	return p, doc, err
}

// Analysis is what the analyze function answers: the source's metadata
// and the capacity plan for it.
type Analysis struct {
	ReplicationConfigArn string
	Metadata             capacity.Metadata
	Plan                 capacity.Plan
}

// Analyze analyzes a replication's source and plans its capacity, without
// starting anything (the analyze function).
func (r *Runner) Analyze(ctx context.Context, arn string) (*Analysis, error) {
	_, t, cfg, err := r.task(ctx, arn)
	if err != nil {
		return nil, err
	}
	md, err := analyze.Analyze(ctx, t, analysisWindow, r.Log)
	if err != nil {
		return nil, err
	}
	minU, maxU := unitRange(cfg)
	p, err := capacity.Size(md, minU, maxU)
	if err != nil {
		return nil, err
	}
	return &Analysis{ReplicationConfigArn: arn, Metadata: md, Plan: p}, nil
}

// step moves the status from one start step to the next, unless the
// replication was stopped meanwhile.
func (r *Runner) step(ctx context.Context, arn, from, to string, edit func(*store.ReplicationRecord)) error {
	_, err := r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		if rep.Status != from {
			return fmt.Errorf("%w: status is %s, not %s", errStopped, rep.Status, from)
		}
		rep.Status = to
		rep.ReplicationUpdateTime = store.At(time.Now())
		if edit != nil {
			edit(rep)
		}
		return nil
	})
	return err
}

func (r *Runner) start(ctx context.Context, arn string) {
	err := r.startChain(ctx, arn)
	if err == nil {
		return
	}
	if errors.Is(err, errStopped) {
		// Stopped before a replicator ran: nothing to wait for.
		_, _ = r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if rep.Status != store.StatusStopping {
				return errStopped
			}
			r.ended(rep, StopNormal, "")
			return nil
		})
		return
	}
	r.Log.Warn("replication failed to start", "replication", arn, "error", err)
	_, _ = r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		r.ended(rep, StopFatal, err.Error())
		var cf *checkFailed
		if errors.As(err, &cf) {
			rep.FailureMessages = cf.problems
		}
		return nil
	})
}

// checkFailed is a pre-migration check that found problems, each reported
// as a failure message of its own.
type checkFailed struct{ problems []string }

func (c *checkFailed) Error() string {
	return "the source is not ready for change capture: " + strings.Join(c.problems, "; ")
}

func (r *Runner) startChain(ctx context.Context, arn string) error {
	if err := r.step(ctx, arn, store.StatusInitializing, store.StatusPreparingMetadata, nil); err != nil {
		return err
	}
	_, t, cfg, err := r.task(ctx, arn)
	if err != nil {
		return err
	}
	if err := r.step(ctx, arn, store.StatusPreparingMetadata, store.StatusTestingConnection, nil); err != nil {
		return err
	}
	if err := testConnections(ctx, t); err != nil {
		return err
	}
	if problems := analyze.Check(ctx, t, r.Log); len(problems) > 0 {
		return &checkFailed{problems}
	}
	if err := r.step(ctx, arn, store.StatusTestingConnection, store.StatusFetchingMetadata, nil); err != nil {
		return err
	}
	if err := r.step(ctx, arn, store.StatusFetchingMetadata, store.StatusCalculatingCap, nil); err != nil {
		return err
	}
	plan, doc, err := r.size(ctx, t, cfg)
	if err != nil {
		return err
	}
	if err := r.step(ctx, arn, store.StatusCalculatingCap, store.StatusProvisioningCap, func(rep *store.ReplicationRecord) {
		rep.ProvisionData = &store.ProvisionData{ProvisionState: store.Provisioning, ReasonForNewProvisioningData: plan.Reason}
	}); err != nil {
		return err
	}
	if err := r.step(ctx, arn, store.StatusProvisioningCap, store.StatusReplicationStarting, func(rep *store.ReplicationRecord) {
		now := store.At(time.Now())
		rep.ProvisionData = &store.ProvisionData{
			ProvisionState: store.Provisioned, ProvisionedCapacityUnits: plan.Units, DateProvisioned: now,
			ReasonForNewProvisioningData: plan.Reason,
		}
	}); err != nil {
		return err
	}
	rep, err := r.Store.Replication(ctx, arn)
	if err != nil {
		return err
	}
	if err := r.carry(ctx, arn, rep.StartReplicationType == "resume-processing"); err != nil {
		return err
	}
	if err := r.launch(ctx, arn, doc, plan); err != nil {
		return err
	}
	// A stop that came between the last step and the launch found nothing
	// to stop: stop the replicator now.
	if rep, err := r.Store.Replication(ctx, arn); err == nil && rep.Status == store.StatusStopping {
		return r.Launcher.Stop(ctx, arn)
	}
	return nil
}

// task builds the replicator's task document, with the endpoints'
// credentials opened or resolved. It holds passwords: it goes only to the
// launcher.
func (r *Runner) task(ctx context.Context, arn string) ([]byte, *task.Task, *store.Config, error) {
	cfg, err := r.Store.Config(ctx, arn)
	if err != nil {
		return nil, nil, nil, err
	}
	rep, err := r.Store.Replication(ctx, arn)
	if err != nil {
		return nil, nil, nil, err
	}
	t := &task.Task{
		ReplicationConfigIdentifier: cfg.ReplicationConfigIdentifier,
		ReplicationType:             cfg.ReplicationType,
		TableMappings:               jsonString(cfg.TableMappings),
		ReplicationSettings:         jsonString(cfg.ReplicationSettings),
		CdcStartPosition:            rep.CdcStartPosition,
		CdcStopPosition:             rep.CdcStopPosition,
		CdcStartTime:                startTime(rep.CdcStartTime),
		ReloadTables:                rep.ReloadTables,
		ReloadToken:                 rep.ReloadToken,
	}
	if rep.Reload {
		t.StartReplicationType = "reload-target"
	}
	if t.SourceEndpoint, err = r.endpoint(ctx, cfg.SourceEndpointArn); err != nil {
		return nil, nil, nil, fmt.Errorf("source endpoint: %w", err)
	}
	if t.TargetEndpoint, err = r.endpoint(ctx, cfg.TargetEndpointArn); err != nil {
		return nil, nil, nil, fmt.Errorf("target endpoint: %w", err)
	}
	// Every replication gets its own slot unless the endpoint names one: a
	// config identifier is unique, so the default slot is too.
	doc, err := json.Marshal(t)
	if err != nil {
		return nil, nil, nil, err
	}
	return doc, t, cfg, nil
}

func jsonString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s)
	return b
}

func (r *Runner) endpoint(ctx context.Context, arn string) (task.Endpoint, error) {
	rec, err := r.Store.Endpoint(ctx, arn)
	if err != nil {
		return task.Endpoint{}, err
	}
	ep := task.Endpoint{
		EndpointIdentifier: rec.EndpointIdentifier, EngineName: rec.EngineName,
		ServerName: rec.ServerName, Port: rec.Port, DatabaseName: rec.DatabaseName,
		Username: rec.Username, SslMode: rec.SslMode,
	}
	if ps := rec.PostgreSQLSettings; ps != nil && (ps.SlotName != "" || ps.PluginName != "") {
		ep.PostgreSQLSettings = &task.PostgreSQLSettings{SlotName: ps.SlotName, PluginName: ps.PluginName}
	}
	if id, err := runtime.ServerIDAttribute(rec.ExtraConnectionAttributes); err != nil {
		return ep, fmt.Errorf("endpoint %s: %w", rec.EndpointIdentifier, err)
	} else if id != 0 {
		ep.MySQLSettings = &task.MySQLSettings{ServerId: id}
	}
	switch {
	case rec.SecretID() != "":
		if r.Secrets == nil {
			return ep, fmt.Errorf("endpoint %s keeps its credentials in Secrets Manager secret %s, but this server has no Secrets Manager client (set AWS_REGION and AWS credentials)", rec.EndpointIdentifier, rec.SecretID())
		}
		s, err := r.Secrets.Resolve(ctx, rec.SecretID())
		if err != nil {
			return ep, fmt.Errorf("endpoint %s: %w", rec.EndpointIdentifier, err)
		}
		ep.Password = s.Password
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&ep.Username, s.Username)
		fill(&ep.ServerName, s.Host)
		fill(&ep.DatabaseName, s.DBName)
		if ep.Port == 0 {
			ep.Port = s.Port
		}
	case rec.SealedPassword != "":
		if r.Box == nil {
			return ep, fmt.Errorf("endpoint %s has a stored password, but this server was started without SLUICE_MASTER_KEY: start it with the key the password was stored with", rec.EndpointIdentifier)
		}
		pw, err := r.Box.Open(rec.SealedPassword, rec.EndpointArn)
		if err != nil {
			return ep, fmt.Errorf("endpoint %s: the stored password cannot be opened with this SLUICE_MASTER_KEY (was the key changed?): modify the endpoint with its password again: %w", rec.EndpointIdentifier, err)
		}
		ep.Password = pw
	}
	return ep, nil
}

// testConnections connects to both endpoints as the replicator will, so a
// wrong host or password fails the start with the reason, before any
// capacity is provisioned.
func testConnections(ctx context.Context, t *task.Task) error {
	for _, e := range []struct {
		role string
		ep   task.Endpoint
	}{{"source", t.SourceEndpoint}, {"target", t.TargetEndpoint}} {
		cctx, cancel := context.WithTimeout(ctx, connectTestTimeout)
		var err error
		if e.ep.IsMySQL() {
			var conn *client.Conn
			conn, err = mysqlconn.Connect(cctx, e.ep.MySQLServer(), connectTestTimeout)
			if err == nil {
				err = conn.Ping()
				conn.Close()
			}
		} else {
			var conn *pgx.Conn
			conn, err = pgx.Connect(cctx, e.ep.ConnString())
			if err == nil {
				err = conn.Ping(cctx)
				conn.Close(context.WithoutCancel(ctx))
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("test connection to the %s endpoint %s (%s:%d/%s): %v. Check the endpoint's server, port, database, user name and password, and that the server accepts connections from Sluice", e.role, e.ep.EndpointIdentifier, e.ep.ServerName, e.ep.Port, e.ep.DatabaseName, err)
		}
	}
	return nil
}

// ended records the end of a run: status, reason, failure, and the release
// of the capacity it held (a local replicator holds nothing once it exits).
func (r *Runner) ended(rep *store.ReplicationRecord, reason, failure string) {
	now := store.At(time.Now())
	rep.Status = store.StatusStopped
	rep.FailureMessages = nil
	if failure != "" {
		rep.Status = store.StatusFailed
		rep.FailureMessages = []string{failure}
	}
	rep.StopReason = reason
	rep.CDCLatencyTarget = 0
	rep.ReplicationUpdateTime, rep.ReplicationLastStopTime = now, now
	if rep.ReplicationStats != nil {
		rep.ReplicationStats.StopDate = now
	}
	if pd := rep.ProvisionData; pd != nil && pd.ProvisionState == store.Provisioned && r.DeprovisionAfter > 0 {
		// The capacity stays for a quick restart until the timer (kept
		// with the record in Redis) is due; Sweep releases it then.
		rep.ReplicationDeprovisionTime = store.At(now.Add(r.DeprovisionAfter))
		return
	}
	if rep.ProvisionData != nil {
		rep.ProvisionData.ProvisionState = store.Deprovisioned
		rep.ProvisionData.ProvisionedCapacityUnits = 0
	}
	rep.ReplicationDeprovisionTime = now
}

// Sweep releases the capacity of the replications whose deprovision time
// has come. The claim is a compare-and-set on each record, so sweepers
// running at once (several servers, or a scheduled function) release each
// once.
func (r *Runner) Sweep(ctx context.Context) error {
	now := time.Now()
	due, err := r.Store.DueDeprovisions(ctx, now)
	if err != nil {
		return err
	}
	for _, arn := range due {
		_, err := r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			pd := rep.ProvisionData
			if pd == nil || pd.ProvisionState != store.Provisioned || rep.ReplicationDeprovisionTime == nil || rep.ReplicationDeprovisionTime.After(now) ||
				(rep.Status != store.StatusStopped && rep.Status != store.StatusFailed) {
				return errClaimed
			}
			pd.ProvisionState = store.Deprovisioning
			return nil
		})
		if errors.Is(err, errClaimed) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		// A local replicator holds nothing once it has exited: the
		// release is the record's.
		_, err = r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if rep.ProvisionData == nil || rep.ProvisionData.ProvisionState != store.Deprovisioning {
				return errClaimed
			}
			rep.ProvisionData.ProvisionState = store.Deprovisioned
			rep.ProvisionData.ProvisionedCapacityUnits = 0
			rep.ReplicationUpdateTime = store.At(time.Now())
			return nil
		})
		if err != nil && !errors.Is(err, errClaimed) {
			return err
		}
		r.Log.Info("capacity released", "replication", arn)
	}
	return nil
}

// Consume carries out what an API without replicators of its own (the
// Lambda function) queued: starts, table reloads and stops, each claimed
// from its queue so that one server does it.
func (r *Runner) Consume(ctx context.Context) error {
	for _, q := range []struct {
		name string
		do   func(context.Context, string) error
	}{{store.QueueStops, r.Stop}, {store.QueueReloads, r.Reload}, {store.QueueStarts, r.Start}} {
		arns, err := r.Store.Queued(ctx, q.name)
		if err != nil {
			return err
		}
		for _, arn := range arns {
			if ok, err := r.Store.Dequeue(ctx, q.name, arn); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			r.Log.Info("carrying out a queued request", "queue", q.name, "replication", arn)
			if err := q.do(ctx, arn); err != nil {
				r.Log.Warn("a queued request failed", "queue", q.name, "replication", arn, "error", err)
			}
		}
	}
	return nil
}

// Pass runs the control loop for window, for a process that cannot run it
// all the time (the schedule function in AWS, every minute): it takes over
// the replicators running elsewhere (ECS tasks; those that should run and
// do not are launched), records their reports, carries out queued
// requests, and sweeps the leases and deprovision timers, until window
// has passed; it waits for the start chains it began.
func (r *Runner) Pass(ctx context.Context, reports <-chan capacity.Report, window time.Duration) error {
	// A start chain begun late in the window finishes after it.
	r.ctx = context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, reports) }()
	defer func() { <-done }()
	if err := r.Adopt(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var errs []error
		for _, sweep := range []func(context.Context) error{r.Consume, r.SweepLeases, r.Sweep} {
			if err := sweep(ctx); err != nil && ctx.Err() == nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			r.chains.Wait()
			return nil
		case <-tick.C:
		}
	}
}

// SweepLeases launches a new replicator for each running replication
// whose replicator stopped renewing its lease (it died, froze, or lost
// Redis). Claiming a lapsed lease is atomic, so of several sweepers one
// relaunches it; the new replicator's fencing token keeps the old one, if
// it wakes up, from writing.
func (r *Runner) SweepLeases(ctx context.Context) error {
	lapsed, err := r.Store.LapsedLeases(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, arn := range lapsed {
		rep, err := r.Store.Replication(ctx, arn)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if rep.Status != store.StatusRunning && rep.Status != store.StatusReplicationStarting {
			continue
		}
		r.Log.Warn("the replicator's lease lapsed; launching a new one from the checkpoint", "replication", rep.ReplicationConfigIdentifier)
		if err := r.relaunch(ctx, arn); err != nil {
			return err
		}
	}
	return nil
}

// errClaimed ends a sweep's claim on a timer another sweeper (or a new
// start) got to first.
var errClaimed = errors.New("claimed elsewhere")

// Run consumes launcher reports until ctx ends. It also bounds the start
// chains Start runs.
func (r *Runner) Run(ctx context.Context, reports <-chan capacity.Report) {
	if r.ctx == nil {
		r.ctx = ctx
	}
	for {
		select {
		case <-ctx.Done():
			return
		case rep := <-reports:
			if err := r.report(ctx, rep); err != nil && ctx.Err() == nil {
				r.Log.Warn("could not record a replicator's report", "replication", rep.ID, "error", err)
			}
		}
	}
}

func (r *Runner) report(ctx context.Context, rp capacity.Report) error {
	if rp.Stats != nil {
		base, err := r.base(ctx, rp.ID)
		if err != nil {
			return err
		}
		rp.Stats = carried(rp.Stats, base)
		if err := r.Store.PutTableStats(ctx, rp.ID, tableStats(rp.Stats)); err != nil {
			return err
		}
	}
	var stopAt, again bool
	restart := rp.Exited && rp.ExitErr == "" && r.takeRestart(rp.ID)
	updated, err := r.Store.UpdateReplication(ctx, rp.ID, func(rep *store.ReplicationRecord) error {
		now := time.Now()
		if rp.Stats != nil {
			progress(rep, rp.Stats, now)
		}
		if rp.Exited {
			again = restart && rep.Status == store.StatusRunning
			switch {
			case again:
			case r.isDetached() && rp.ExitErr == "" && rep.Status != store.StatusStopping:
				// Stopped with the server; the next one adopts it.
			case rp.Killed && (rep.Status == store.StatusRunning || rep.Status == store.StatusReplicationStarting):
				r.Log.Warn("replicator killed; a new one takes over once its lease lapses", "replication", rp.ID, "error", rp.ExitErr)
			case rp.Killed && rep.Status == store.StatusStopping:
				r.ended(rep, StopNormal, "") // its position is on the target
			case rp.ExitErr != "":
				r.ended(rep, StopFatal, rp.ExitErr)
			case rep.Status == store.StatusStopping:
				reason := StopNormal
				if stopTimeReached(rep, now) {
					reason = StopAtServerTime
				}
				r.ended(rep, reason, "")
			case rp.Stats != nil && rp.Stats.Phase == runtime.PhaseStoppedAtCommitTime:
				r.ended(rep, StopAtCommitTime, "")
			case rep.ReplicationType == runtime.FullLoad:
				r.ended(rep, StopFullLoadOnly, "")
			case rep.Status == store.StatusRunning:
				// It stopped cleanly without being asked (its ECS task
				// was stopped by ECS, a SIGTERM from outside): it goes
				// on from its checkpoint.
				again = true
				r.Log.Warn("replicator stopped without being asked; launching it again", "replication", rp.ID)
			default:
				r.ended(rep, StopNormal, "")
			}
			return nil
		}
		if rp.Stats != nil && rep.Status == store.StatusReplicationStarting {
			rep.Status = store.StatusRunning
			rep.ReplicationUpdateTime = store.At(now)
		}
		if rep.Status == store.StatusRunning {
			if stopTimeReached(rep, now) {
				rep.Status = store.StatusStopping
				stopAt = true
			}
		}
		return nil
	})
	if rp.Exited && !again {
		r.mu.Lock()
		delete(r.resizes, rp.ID)
		delete(r.bounds, rp.ID)
		if r.Scaler != nil {
			r.Scaler.Forget(rp.ID)
		}
		r.mu.Unlock()
	}
	if err == nil && stopAt {
		return r.Launcher.Stop(ctx, rp.ID)
	}
	if err == nil && !rp.Exited && rp.Stats != nil {
		err = r.autoscale(ctx, updated, rp.Stats)
	}
	if err == nil && again {
		return r.relaunch(ctx, rp.ID)
	}
	return err
}

// autoscale feeds a running replication's utilization to the scaler and,
// when it decides on another size, relaunches the replicator at that size
// from its checkpoint: it stops gracefully (its position committed), and
// its exit report launches the new one.
func (r *Runner) autoscale(ctx context.Context, rep *store.ReplicationRecord, s *runtime.Snapshot) error {
	if r.Scaler == nil || s.Phase != runtime.PhaseCDC {
		// A full load would start over: sizes change only while
		// changes are applied.
		return nil
	}
	if rep.Status != store.StatusRunning || rep.ProvisionData == nil || rep.ProvisionData.ProvisionedCapacityUnits == 0 {
		return nil
	}
	arn := rep.ReplicationConfigArn
	minU, maxU, err := r.unitBounds(ctx, arn)
	if err != nil {
		return err
	}
	u := capacity.Utilization{CPU: s.CPU, Lag: s.Lag}
	if s.BufferLimit > 0 {
		u.BufferFill = float64(s.BufferBytes) / float64(s.BufferLimit)
	}
	r.mu.Lock()
	_, busy := r.restarting[arn]
	var to int
	var why string
	units := rep.ProvisionData.ProvisionedCapacityUnits
	if !busy {
		to, why = r.Scaler.Observe(arn, units, minU, maxU, u, time.Now())
	}
	if busy || to == units {
		r.mu.Unlock()
		return nil
	}
	if r.restarting == nil {
		r.restarting = map[string]bool{}
	}
	if r.resizes == nil {
		r.resizes = map[string]capacity.Plan{}
	}
	r.restarting[arn] = true
	r.resizes[arn] = capacity.ForUnits(to, why)
	r.mu.Unlock()
	r.Log.Info("resizing a replication", "replication", rep.ReplicationConfigIdentifier, "from", units, "to", to, "reason", why)
	_, err = r.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		if rep.ProvisionData != nil {
			rep.ProvisionData.IsNewProvisioningAvailable = true
			rep.ProvisionData.DateNewProvisioningDataAvailable = store.At(time.Now())
			rep.ProvisionData.ReasonForNewProvisioningData = why
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.Launcher.Stop(ctx, arn)
}

// unitRange is the config's Min/MaxCapacityUnits, zero where unset.
func unitRange(cfg *store.Config) (minU, maxU int) {
	if c := cfg.ComputeConfig; c != nil {
		return c.MinCapacityUnits, c.MaxCapacityUnits
	}
	return 0, 0
}

// unitBounds returns a replication's Min/MaxCapacityUnits (DMS's defaults
// where the config is silent), from Redis on its run's first report.
func (r *Runner) unitBounds(ctx context.Context, arn string) (int, int, error) {
	r.mu.Lock()
	b, ok := r.bounds[arn]
	r.mu.Unlock()
	if ok {
		return b[0], b[1], nil
	}
	cfg, err := r.Store.Config(ctx, arn)
	if err != nil {
		return 0, 0, err
	}
	b = [2]int{1, capacity.ValidUnits[len(capacity.ValidUnits)-1]}
	if minU, maxU := unitRange(cfg); minU > 0 || maxU > 0 {
		b[0], b[1] = max(minU, b[0]), cmp.Or(maxU, b[1])
	}
	r.mu.Lock()
	if r.bounds == nil {
		r.bounds = map[string][2]int{}
	}
	r.bounds[arn] = b
	r.mu.Unlock()
	return b[0], b[1], nil
}

// stopTimeReached says whether the replication's server_time stop position
// has passed.
func stopTimeReached(rep *store.ReplicationRecord, now time.Time) bool {
	sp, err := runtime.ParseStopPosition(rep.CdcStopPosition)
	return err == nil && sp.Kind == "server_time" && !now.Before(sp.At)
}

// progress copies a replicator's statistics into the replication.
func progress(rep *store.ReplicationRecord, s *runtime.Snapshot, now time.Time) {
	if s.Checkpoint != "" {
		rep.RecoveryCheckpoint = s.Checkpoint
	}
	if s.Phase == "cdc" {
		// The reload-target's full load is done: a replicator launched
		// again from here (reload of tables, a new server) resumes.
		rep.Reload = false
	}
	rep.CDCLatencyTarget = s.Lag.Seconds()
	st := rep.ReplicationStats
	if st == nil {
		st = &store.ReplicationStats{}
		rep.ReplicationStats = st
	}
	st.TablesLoaded, st.TablesLoading, st.TablesQueued, st.TablesErrored = 0, 0, 0, 0
	var first, last time.Time
	for _, t := range s.Tables {
		switch t.TableState {
		case runtime.StateCompleted:
			st.TablesLoaded++
		case runtime.StateLoading:
			st.TablesLoading++
		case runtime.StateError:
			st.TablesErrored++
		default:
			st.TablesQueued++
		}
		if !t.FullLoadStartTime.IsZero() && (first.IsZero() || t.FullLoadStartTime.Before(first)) {
			first = t.FullLoadStartTime
		}
		if t.FullLoadEndTime.After(last) {
			last = t.FullLoadEndTime
		}
	}
	if n := len(s.Tables); n > 0 {
		st.FullLoadProgressPercent = 100 * st.TablesLoaded / n
	}
	if !first.IsZero() {
		st.FullLoadStartDate = store.At(first)
	}
	if !last.IsZero() && st.TablesLoaded == len(s.Tables) {
		st.FullLoadFinishDate = store.At(last)
	}
	if st.StartDate != nil {
		st.ElapsedTimeMillis = now.Sub(st.StartDate.Time).Milliseconds()
	}
}

// carried adds the statistics of the runs before a resumed run to its own:
// the counters go on, and a table the earlier runs loaded keeps its
// full-load rows and times.
func carried(s *runtime.Snapshot, base []store.TableStatistics) *runtime.Snapshot {
	if len(base) == 0 {
		return s
	}
	before := make(map[[2]string]store.TableStatistics, len(base))
	for _, b := range base {
		before[[2]string{b.SchemaName, b.TableName}] = b
	}
	out := *s
	out.Tables = make([]runtime.TableSnapshot, len(s.Tables))
	for i, t := range s.Tables {
		if b, ok := before[[2]string{t.SchemaName, t.TableName}]; ok {
			t.Inserts += b.Inserts
			t.Updates += b.Updates
			t.Deletes += b.Deletes
			t.DDLs += b.Ddls
			if t.FullLoadStartTime.IsZero() && b.FullLoadStartTime != nil {
				t.FullLoadRows = b.FullLoadRows
				t.FullLoadStartTime = b.FullLoadStartTime.Time
				if b.FullLoadEndTime != nil {
					t.FullLoadEndTime = b.FullLoadEndTime.Time
				}
			}
		}
		out.Tables[i] = t
	}
	return &out
}

func tableStats(s *runtime.Snapshot) []store.TableStatistics {
	now := store.At(time.Now())
	out := make([]store.TableStatistics, 0, len(s.Tables))
	for _, t := range s.Tables {
		ts := store.TableStatistics{
			SchemaName: t.SchemaName, TableName: t.TableName,
			Inserts: t.Inserts, Updates: t.Updates, Deletes: t.Deletes, Ddls: t.DDLs,
			AppliedInserts: t.Inserts, AppliedUpdates: t.Updates, AppliedDeletes: t.Deletes, AppliedDdls: t.DDLs,
			FullLoadRows: t.FullLoadRows, TableState: t.TableState, LastUpdateTime: now,
			EstimatedRows: t.EstimatedRows,
		}
		if !t.FullLoadStartTime.IsZero() {
			ts.FullLoadStartTime = store.At(t.FullLoadStartTime)
		}
		if !t.FullLoadEndTime.IsZero() {
			ts.FullLoadEndTime = store.At(t.FullLoadEndTime)
		}
		if len(t.Warnings) > 0 {
			ts.ValidationStateDetails = strings.Join(t.Warnings, "; ")
		}
		out = append(out, ts)
	}
	return out
}
