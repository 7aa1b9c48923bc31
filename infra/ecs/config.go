package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/launch"
	"github.com/sluicedb/sluice/infra/store"
)

// Defaults of Config.
const (
	DefaultContainer    = "replicator"
	DefaultLeaseTTL     = 15 * time.Second
	DefaultPollInterval = 2 * time.Second
)

// Config says where and how replicator tasks run.
type Config struct {
	Cluster        string           // name or ARN
	TaskDefinition string           // family, family:revision or ARN
	LaunchType     types.LaunchType // FARGATE or EC2
	// Subnets and SecurityGroups are the awsvpc network of the tasks:
	// required on Fargate, and on EC2 for a task definition in awsvpc mode.
	Subnets, SecurityGroups []string
	// AssignPublicIP gives Fargate tasks a public IP (to pull their image
	// from a subnet without a NAT gateway).
	AssignPublicIP bool
	// Container is the replicator's container in the task definition, the
	// one the overrides go to.
	Container string
	// RedisURL is how the tasks reach the control plane's Redis, which may
	// differ from how the server does.
	RedisURL string
	// LeaseTTL is the replicators' lease TTL (SLUICE_LEASE_TTL).
	LeaseTTL time.Duration
	// PollInterval is how often each task is described; 0 means
	// DefaultPollInterval. Tests make it short.
	PollInterval time.Duration
}

// ConfigFromEnv reads SLUICE_ECS_CLUSTER and SLUICE_ECS_TASK_DEFINITION
// (required), SLUICE_ECS_LAUNCH_TYPE (FARGATE or EC2; FARGATE),
// SLUICE_ECS_SUBNETS and SLUICE_ECS_SECURITY_GROUPS (comma-separated;
// required on Fargate), SLUICE_ECS_ASSIGN_PUBLIC_IP (true or false; false),
// SLUICE_ECS_CONTAINER (replicator), SLUICE_ECS_REDIS_URL or else
// SLUICE_REDIS_URL (the Redis URL the tasks use; required) and
// SLUICE_LEASE_TTL (15s). The error names every variable that is missing or
// wrong and says what it should hold.
func ConfigFromEnv() (Config, error) {
	var errs []error
	cfg := Config{
		Cluster:        env("SLUICE_ECS_CLUSTER"),
		TaskDefinition: env("SLUICE_ECS_TASK_DEFINITION"),
		LaunchType:     types.LaunchType(strings.ToUpper(env("SLUICE_ECS_LAUNCH_TYPE"))),
		Subnets:        list(env("SLUICE_ECS_SUBNETS")),
		SecurityGroups: list(env("SLUICE_ECS_SECURITY_GROUPS")),
		Container:      env("SLUICE_ECS_CONTAINER"),
		RedisURL:       env("SLUICE_ECS_REDIS_URL"),
	}.withDefaults()
	if cfg.RedisURL == "" {
		cfg.RedisURL = env("SLUICE_REDIS_URL")
	}
	if v := env("SLUICE_ECS_ASSIGN_PUBLIC_IP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SLUICE_ECS_ASSIGN_PUBLIC_IP %q is not true or false", v))
		}
		cfg.AssignPublicIP = b
	}
	if v := env("SLUICE_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("SLUICE_LEASE_TTL %q is not a duration of at least 1s, like 15s", v))
		} else {
			cfg.LeaseTTL = d
		}
	}
	if err := errors.Join(append(errs, cfg.check())...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// list splits a comma-separated value, dropping blanks.
func list(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// check says everything that is wrong with c, naming the variables that set
// it. It does not change c; withDefaults fills what may be left out.
func (c Config) check() error {
	var errs []error
	if c.Cluster == "" {
		errs = append(errs, errors.New("SLUICE_ECS_CLUSTER is not set: it must name the ECS cluster the replicator tasks run in (its name or ARN)"))
	}
	if c.TaskDefinition == "" {
		errs = append(errs, errors.New("SLUICE_ECS_TASK_DEFINITION is not set: it must name the replicator's task definition (family, family:revision or ARN)"))
	}
	switch c.LaunchType {
	case types.LaunchTypeFargate:
		if len(c.Subnets) == 0 {
			errs = append(errs, errors.New("SLUICE_ECS_SUBNETS is not set: Fargate tasks need the IDs of the subnets they run in, comma-separated, like subnet-0a1b2c,subnet-3d4e5f"))
		}
		if len(c.SecurityGroups) == 0 {
			errs = append(errs, errors.New("SLUICE_ECS_SECURITY_GROUPS is not set: Fargate tasks need the IDs of their security groups, comma-separated, like sg-0a1b2c (they must reach Redis and the databases)"))
		}
	case types.LaunchTypeEc2:
		if c.AssignPublicIP {
			errs = append(errs, errors.New("SLUICE_ECS_ASSIGN_PUBLIC_IP=true needs SLUICE_ECS_LAUNCH_TYPE=FARGATE: ECS assigns public IPs to Fargate tasks only"))
		}
	default:
		errs = append(errs, fmt.Errorf("SLUICE_ECS_LAUNCH_TYPE %q is not FARGATE or EC2", c.LaunchType))
	}
	for _, s := range c.Subnets {
		if !strings.HasPrefix(s, "subnet-") {
			errs = append(errs, fmt.Errorf("SLUICE_ECS_SUBNETS holds %q, which is not a subnet ID (subnet-…)", s))
		}
	}
	for _, s := range c.SecurityGroups {
		if !strings.HasPrefix(s, "sg-") {
			errs = append(errs, fmt.Errorf("SLUICE_ECS_SECURITY_GROUPS holds %q, which is not a security group ID (sg-…)", s))
		}
	}
	errs = append(errs, checkRedisURL(c.RedisURL))
	if c.LeaseTTL != 0 && c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("SLUICE_LEASE_TTL %s is under 1s", c.LeaseTTL))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("the poll interval %s is negative", c.PollInterval))
	}
	return errors.Join(errs...)
}

const redisURLHint = "set SLUICE_ECS_REDIS_URL (or SLUICE_REDIS_URL) to the Redis URL the tasks use, like redis://sluice.abc123.use1.cache.amazonaws.com:6379/0"

func checkRedisURL(u string) error {
	if u == "" {
		return errors.New("the replicator tasks have no Redis to report to: " + redisURLHint)
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return fmt.Errorf("the tasks' Redis URL is not a Redis URL (%v): %s", err, redisURLHint)
	}
	host, _, _ := net.SplitHostPort(opt.Addr)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return fmt.Errorf("the tasks' Redis URL points at %s, a loopback address that an ECS task cannot reach: %s", opt.Addr, redisURLHint)
	}
	return nil
}

// withDefaults fills the fields that may be left out.
func (c Config) withDefaults() Config {
	if c.LaunchType == "" {
		c.LaunchType = types.LaunchTypeFargate
	}
	if c.Container == "" {
		c.Container = DefaultContainer
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	return c
}

// FromEnv is the launcher SLUICE_LAUNCHER=ecs asks for: its settings from
// SLUICE_ECS_* (ConfigFromEnv), AWS's from the SDK's usual sources.
func FromEnv(ctx context.Context, st *store.Store, reports chan<- launch.Report, log *slog.Logger) (*Launcher, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for ECS: %w", err)
	}
	return New(awsecs.NewFromConfig(awsCfg), st, cfg, reports, log)
}
