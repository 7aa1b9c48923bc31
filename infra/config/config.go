// Package config reads Sluice's environment contract (DESIGN.md) once, for
// sluice serve and the three functions alike: each variable's default is
// here and only here, and every variable that is wrong is named in one
// error, with what it should look like. The adapters with settings of
// their own read them next to the code they configure (SLUICE_ECS_* in
// infra/ecs, SLUICE_SCHEDULE_* in infra/scheduler, OTEL_* in
// infra/telemetry); secrets passed by ARN are loaded first (Load).
package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/store"
)

// Config is the environment contract.
type Config struct {
	// Addr is where sluice serve listens (SLUICE_ADDR).
	Addr string
	// RedisURL holds the control state (SLUICE_REDIS_URL).
	RedisURL string
	// AccessKeyID and SecretAccessKey are the key pair clients sign with
	// (SLUICE_ACCESS_KEY_ID, SLUICE_SECRET_ACCESS_KEY).
	AccessKeyID, SecretAccessKey string
	// TrustIAM is SLUICE_API_AUTH=iam: API Gateway's IAM authorizer has
	// verified the caller (the API function only); sigv4, the default,
	// verifies signatures here.
	TrustIAM bool
	// Region and AccountID go into ARNs and the SigV4 scope
	// (SLUICE_REGION, SLUICE_ACCOUNT_ID).
	Region, AccountID string
	// MasterKey seals endpoint passwords (SLUICE_MASTER_KEY); empty means
	// endpoints must use Secrets Manager.
	MasterKey string
	// DeprovisionAfter is how long a stopped replication keeps its
	// capacity (SLUICE_DEPROVISION_AFTER).
	DeprovisionAfter time.Duration
	// LeaseTTL is how long a replicator's lease lasts unrenewed
	// (SLUICE_LEASE_TTL).
	LeaseTTL time.Duration
	// RetentionCheck is how often the WAL each replication's slot holds
	// on its source is measured, running or stopped
	// (SLUICE_RETENTION_CHECK).
	RetentionCheck time.Duration
	// Launcher is local (child processes) or ecs (SLUICE_LAUNCHER).
	Launcher string
	// ReplicatorBin and StateDir are the local launcher's binary and
	// files (SLUICE_REPLICATOR_BIN, beside the running binary by default;
	// SLUICE_STATE_DIR).
	ReplicatorBin, StateDir string
	// Autoscale is SLUICE_AUTOSCALE (on, off); ScaleUpAfter,
	// ScaleDownAfter and UnitCPU adjust the scaler when set
	// (SLUICE_SCALE_UP_AFTER, SLUICE_SCALE_DOWN_AFTER, SLUICE_UNIT_CPU).
	Autoscale                    bool
	ScaleUpAfter, ScaleDownAfter time.Duration
	UnitCPU                      float64
	// SweepWindow is how long the schedule function's sweep runs the
	// control loop when replicators are ECS tasks (SLUICE_SWEEP_WINDOW).
	SweepWindow time.Duration
	// Scheduler is where `sluice schedule` keeps schedules: local (Redis,
	// fired by sluice serve) or aws (EventBridge Scheduler;
	// SLUICE_SCHEDULER).
	Scheduler string
}

// Defaults, as DESIGN.md gives them.
const (
	DefaultAddr     = "127.0.0.1:8377"
	DefaultRedisURL = "redis://127.0.0.1:6379/0"
	DefaultRegion   = "us-east-1"
	DefaultAccount  = "000000000000"
)

// Load loads the secrets the environment passes by ARN
// (SLUICE_MASTER_KEY_SECRET_ARN, SLUICE_SECRET_ACCESS_KEY_SECRET_ARN), then
// reads the environment.
func Load(ctx context.Context) (*Config, error) {
	if err := secrets.LoadEnv(ctx, "SLUICE_MASTER_KEY", "SLUICE_SECRET_ACCESS_KEY"); err != nil {
		return nil, err
	}
	return Read(os.Getenv)
}

// Read reads the contract from getenv, checking every variable; the error
// names each one that is wrong.
func Read(getenv func(string) string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		Addr:            r.str("SLUICE_ADDR", DefaultAddr),
		RedisURL:        r.str("SLUICE_REDIS_URL", DefaultRedisURL),
		AccessKeyID:     r.str("SLUICE_ACCESS_KEY_ID", ""),
		SecretAccessKey: r.str("SLUICE_SECRET_ACCESS_KEY", ""),
		Region:          r.str("SLUICE_REGION", DefaultRegion),
		AccountID:       r.str("SLUICE_ACCOUNT_ID", DefaultAccount),
		MasterKey:       r.str("SLUICE_MASTER_KEY", ""),
		ReplicatorBin:   r.str("SLUICE_REPLICATOR_BIN", ""),
		StateDir:        r.str("SLUICE_STATE_DIR", filepath.Join(os.TempDir(), fmt.Sprintf("sluice-%d", os.Getuid()))),
	}
	c.TrustIAM = r.choice("SLUICE_API_AUTH", "sigv4", "is not sigv4 (clients sign for service dms with SLUICE_ACCESS_KEY_ID) or iam (API Gateway's IAM authorizer verifies callers)", "sigv4", "iam") == "iam"
	c.Launcher = r.choice("SLUICE_LAUNCHER", "local", "is not local (child processes) or ecs (ECS tasks)", "local", "ecs")
	c.Scheduler = r.choice("SLUICE_SCHEDULER", "local", "is not local (Redis, fired by sluice serve) or aws (EventBridge Scheduler)", "local", "aws")
	c.Autoscale = r.choice("SLUICE_AUTOSCALE", "on", "is not on or off", "on", "off") == "on"
	c.DeprovisionAfter = r.duration("SLUICE_DEPROVISION_AFTER", 48*time.Hour, 0, "a duration like 48h or 30m")
	c.LeaseTTL = r.duration("SLUICE_LEASE_TTL", 15*time.Second, time.Second, "a duration of at least 1s, like 15s")
	c.RetentionCheck = r.duration("SLUICE_RETENTION_CHECK", 30*time.Second, 100*time.Millisecond, "a duration like 30s")
	c.ScaleUpAfter = r.duration("SLUICE_SCALE_UP_AFTER", 0, time.Nanosecond, "a duration like 2m")
	c.ScaleDownAfter = r.duration("SLUICE_SCALE_DOWN_AFTER", 0, time.Nanosecond, "a duration like 2m")
	c.SweepWindow = r.duration("SLUICE_SWEEP_WINDOW", 40*time.Second, time.Nanosecond, "a duration like 40s")
	if v := getenv("SLUICE_UNIT_CPU"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			r.fail("SLUICE_UNIT_CPU %q is not a positive number of cores, like 1 or 0.5", v)
		}
		c.UnitCPU = f
	}
	return c, errors.Join(r.errs...)
}

// CheckAPI says what is missing for the API to verify callers.
func (c *Config) CheckAPI() error {
	if (c.AccessKeyID == "" || c.SecretAccessKey == "") && !c.TrustIAM {
		return errors.New("SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY must be set: they are the key pair clients sign requests with (aws configure, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the client)")
	}
	return nil
}

// Box is the sealer of endpoint passwords, nil without SLUICE_MASTER_KEY.
func (c *Config) Box() (*secrets.Box, error) {
	if c.MasterKey == "" {
		return nil, nil
	}
	box, err := secrets.NewBox(c.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("SLUICE_MASTER_KEY: %w", err)
	}
	return box, nil
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) choice(name, def, why string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail("%s %q %s", name, v, why)
	return def
}

// duration reads name as a duration of at least least; def when unset.
func (r *reader) duration(name string, def, least time.Duration, like string) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		r.fail("%s %q is not %s", name, v, like)
		return def
	}
	return d
}

// OpenStore opens the control state at RedisURL. The URL is not in the
// message: it may carry the Redis password.
func (c *Config) OpenStore(ctx context.Context) (*store.Store, error) {
	st, err := store.Open(ctx, c.RedisURL, "sluice")
	if err != nil {
		return nil, fmt.Errorf("open the control state: %w; set SLUICE_REDIS_URL to the Redis that `sluice serve`, the functions and the replicators share (redis://host:port/db), reachable from here", err)
	}
	return st, nil
}

// Open is Load and OpenStore, as every function starts.
func Open(ctx context.Context) (*Config, *store.Store, error) {
	c, err := Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.OpenStore(ctx)
	return c, st, err
}
