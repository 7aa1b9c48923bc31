package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps Sluice's control state in Redis. Every key of one deployment
// carries the same hash tag, so the atomic multi-key updates below also work
// on Redis Cluster. Updates are optimistic transactions (WATCH/MULTI): of
// concurrent updates of one record exactly one wins, and the others run
// again against what it wrote.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// Open connects to the Redis at url (redis://host:port/db) and checks it
// answers. prefix namespaces the keys ("sluice" in production; tests use
// their own).
func Open(ctx context.Context, url, prefix string) (*Store, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("SLUICE_REDIS_URL is not a Redis URL (redis://host:port/db): %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", opt.Addr, err)
	}
	return &Store{rdb: rdb, prefix: prefix}, nil
}

// Close releases the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// Redis returns the client, for the packages that keep their own keys
// (leases, timers) beside the records.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Key returns the name of a key of this deployment.
func (s *Store) Key(kind, id string) string { return "{" + s.prefix + "}:" + kind + ":" + id }

const (
	kEndpoint    = "ep"
	kEndpointID  = "epid"  // identifier → ARN
	kEndpointRef = "epref" // endpoint ARN → set of config ARNs using it
	kEndpoints   = "eps"   // set of endpoint ARNs
	kConfig      = "cfg"
	kConfigID    = "cfgid"
	kConfigs     = "cfgs"
	kReplication = "rep"
	kTableStats  = "tstats"
	kStatsBase   = "tstats-base"
	kTags        = "tags"
	kQueue       = "queue"
	kTimers      = "timers"
	kDrops       = "drops" // hash: deleted config ARN → SourceDrop
)

// maxAttempts bounds the reruns of an optimistic transaction under contention.
const maxAttempts = 200

// tx runs fn as an optimistic transaction watching keys, again while another
// client changed a watched key first.
func (s *Store) tx(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for i := 0; i < maxAttempts; i++ {
		err := s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("%w: the record changed %d times while this request tried to update it; try again", ErrContention, maxAttempts)
}

func getJSON(ctx context.Context, c redis.Cmdable, key string, v any) error {
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: %s", ErrNotFound, describe(key))
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// describe names the record a key holds, for error messages.
func describe(key string) string {
	_, rest, _ := strings.Cut(key, "}:")
	kind, id, _ := strings.Cut(rest, ":")
	switch kind {
	case kEndpoint:
		return "no endpoint " + id
	case kConfig, kReplication:
		return "no replication config " + id
	}
	return "no record " + rest
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: marshal %T: %v", v, err)) // only plain structs are stored
	}
	return b
}

// CreateEndpoint stores a new endpoint; ErrExists if its identifier is taken.
func (s *Store) CreateEndpoint(ctx context.Context, rec *EndpointRecord, tags []Tag) error {
	idKey := s.Key(kEndpointID, rec.EndpointIdentifier)
	return s.tx(ctx, func(tx *redis.Tx) error {
		if err := claimable(ctx, tx, idKey, "an endpoint named "+rec.EndpointIdentifier); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.Key(kEndpoint, rec.EndpointArn), mustJSON(rec), 0)
			p.Set(ctx, idKey, rec.EndpointArn, 0)
			p.SAdd(ctx, s.Key(kEndpoints, ""), rec.EndpointArn)
			s.setTags(ctx, p, rec.EndpointArn, tags)
			return nil
		})
		return err
	}, idKey)
}

// Endpoint returns one endpoint, or ErrNotFound.
func (s *Store) Endpoint(ctx context.Context, arn string) (*EndpointRecord, error) {
	var rec EndpointRecord
	if err := getJSON(ctx, s.rdb, s.Key(kEndpoint, arn), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Endpoints returns every endpoint, oldest first.
func (s *Store) Endpoints(ctx context.Context) ([]*EndpointRecord, error) {
	var out []*EndpointRecord
	err := s.all(ctx, kEndpoints, kEndpoint, func(b []byte) error {
		var rec EndpointRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return err
		}
		out = append(out, &rec)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		return older(out[i].Created.Time, out[j].Created.Time, out[i].EndpointArn, out[j].EndpointArn)
	})
	return out, err
}

func older(a, b time.Time, aID, bID string) bool {
	if !a.Equal(b) {
		return a.Before(b)
	}
	return aID < bID
}

// all reads every record listed in the set kind.
func (s *Store) all(ctx context.Context, set, kind string, each func([]byte) error) error {
	arns, err := s.rdb.SMembers(ctx, s.Key(set, "")).Result()
	if err != nil || len(arns) == 0 {
		return err
	}
	keys := make([]string, len(arns))
	for i, a := range arns {
		keys[i] = s.Key(kind, a)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return err
	}
	for _, v := range vals {
		if str, ok := v.(string); ok { // nil: deleted between the two reads
			if err := each([]byte(str)); err != nil {
				return err
			}
		}
	}
	return nil
}

// UpdateEndpoint changes an endpoint atomically: fn edits the record; an
// error from fn leaves it unchanged. A changed identifier must be free.
func (s *Store) UpdateEndpoint(ctx context.Context, arn string, fn func(*EndpointRecord) error) (*EndpointRecord, error) {
	key := s.Key(kEndpoint, arn)
	var out *EndpointRecord
	err := s.tx(ctx, func(tx *redis.Tx) error {
		var rec EndpointRecord
		if err := getJSON(ctx, tx, key, &rec); err != nil {
			return err
		}
		oldID := rec.EndpointIdentifier
		if err := fn(&rec); err != nil {
			return err
		}
		newIDKey := s.Key(kEndpointID, rec.EndpointIdentifier)
		if rec.EndpointIdentifier != oldID {
			if err := claimable(ctx, tx, newIDKey, "an endpoint named "+rec.EndpointIdentifier); err != nil {
				return err
			}
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, mustJSON(&rec), 0)
			if rec.EndpointIdentifier != oldID {
				p.Del(ctx, s.Key(kEndpointID, oldID))
				p.Set(ctx, newIDKey, arn, 0)
			}
			return nil
		})
		out = &rec
		return err
	}, key)
	return out, err
}

// DeleteEndpoint removes an endpoint that no config uses; ErrInUse names
// the configs that do.
func (s *Store) DeleteEndpoint(ctx context.Context, arn string) (*EndpointRecord, error) {
	key, refKey := s.Key(kEndpoint, arn), s.Key(kEndpointRef, arn)
	var out *EndpointRecord
	err := s.tx(ctx, func(tx *redis.Tx) error {
		var rec EndpointRecord
		if err := getJSON(ctx, tx, key, &rec); err != nil {
			return err
		}
		users, err := tx.SMembers(ctx, refKey).Result()
		if err != nil {
			return err
		}
		if len(users) > 0 {
			sort.Strings(users)
			return fmt.Errorf("%w: endpoint %s is used by replication config %v; delete or modify those first", ErrInUse, rec.EndpointIdentifier, users)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key, s.Key(kEndpointID, rec.EndpointIdentifier), s.Key(kTags, arn))
			p.SRem(ctx, s.Key(kEndpoints, ""), arn)
			return nil
		})
		out = &rec
		return err
	}, key, refKey)
	return out, err
}

// CreateConfig stores a new replication config with its replication (status
// created). Both endpoints must exist; ErrExists if the identifier is taken.
func (s *Store) CreateConfig(ctx context.Context, cfg *Config, rep *ReplicationRecord, tags []Tag) error {
	idKey := s.Key(kConfigID, cfg.ReplicationConfigIdentifier)
	return s.tx(ctx, func(tx *redis.Tx) error {
		if err := claimable(ctx, tx, idKey, "a replication config named "+cfg.ReplicationConfigIdentifier); err != nil {
			return err
		}
		if err := s.watchEndpoints(ctx, tx, cfg); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			arn := cfg.ReplicationConfigArn
			p.Set(ctx, s.Key(kConfig, arn), mustJSON(cfg), 0)
			p.Set(ctx, s.Key(kReplication, arn), mustJSON(rep), 0)
			p.Set(ctx, idKey, arn, 0)
			p.SAdd(ctx, s.Key(kConfigs, ""), arn)
			p.SAdd(ctx, s.Key(kEndpointRef, cfg.SourceEndpointArn), arn)
			p.SAdd(ctx, s.Key(kEndpointRef, cfg.TargetEndpointArn), arn)
			s.setTags(ctx, p, arn, tags)
			return nil
		})
		return err
	}, idKey)
}

// claimable watches an identifier key and fails with ErrExists if another
// resource holds it, so two requests cannot claim one identifier.
func claimable(ctx context.Context, tx *redis.Tx, key, what string) error {
	if err := tx.Watch(ctx, key).Err(); err != nil {
		return err
	}
	n, err := tx.Exists(ctx, key).Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %s already exists", ErrExists, what)
	}
	return nil
}

// configPair reads a config and its replication inside a transaction.
func (s *Store) configPair(ctx context.Context, tx *redis.Tx, arn string) (*Config, *ReplicationRecord, error) {
	var cfg Config
	var rep ReplicationRecord
	if err := getJSON(ctx, tx, s.Key(kConfig, arn), &cfg); err != nil {
		return nil, nil, err
	}
	if err := getJSON(ctx, tx, s.Key(kReplication, arn), &rep); err != nil {
		return nil, nil, err
	}
	return &cfg, &rep, nil
}

// watchEndpoints checks, inside a transaction, that the config's endpoints
// exist, and watches them so a concurrent delete of one fails one side.
func (s *Store) watchEndpoints(ctx context.Context, tx *redis.Tx, cfg *Config) error {
	for _, arn := range []string{cfg.SourceEndpointArn, cfg.TargetEndpointArn} {
		key := s.Key(kEndpoint, arn)
		if err := tx.Watch(ctx, key).Err(); err != nil {
			return err
		}
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: endpoint %s", ErrNotFound, arn)
		}
	}
	return nil
}

// Config returns one replication config, or ErrNotFound.
func (s *Store) Config(ctx context.Context, arn string) (*Config, error) {
	var cfg Config
	if err := getJSON(ctx, s.rdb, s.Key(kConfig, arn), &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Configs returns every replication config, oldest first.
func (s *Store) Configs(ctx context.Context) ([]*Config, error) {
	var out []*Config
	err := s.all(ctx, kConfigs, kConfig, func(b []byte) error {
		var c Config
		if err := json.Unmarshal(b, &c); err != nil {
			return err
		}
		out = append(out, &c)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		return older(out[i].ReplicationConfigCreateTime.Time, out[j].ReplicationConfigCreateTime.Time, out[i].ReplicationConfigArn, out[j].ReplicationConfigArn)
	})
	return out, err
}

// UpdateConfig changes a config and its replication together, atomically:
// fn sees both and may change both; an error from fn leaves them unchanged.
// Changed endpoints must exist; a changed identifier must be free.
func (s *Store) UpdateConfig(ctx context.Context, arn string, fn func(*Config, *ReplicationRecord) error) (*Config, *ReplicationRecord, error) {
	key, repKey := s.Key(kConfig, arn), s.Key(kReplication, arn)
	var outC *Config
	var outR *ReplicationRecord
	err := s.tx(ctx, func(tx *redis.Tx) error {
		cfg, rep, err := s.configPair(ctx, tx, arn)
		if err != nil {
			return err
		}
		old := *cfg
		if err := fn(cfg, rep); err != nil {
			return err
		}
		idChanged := cfg.ReplicationConfigIdentifier != old.ReplicationConfigIdentifier
		newIDKey := s.Key(kConfigID, cfg.ReplicationConfigIdentifier)
		if idChanged {
			if err := claimable(ctx, tx, newIDKey, "a replication config named "+cfg.ReplicationConfigIdentifier); err != nil {
				return err
			}
		}
		if cfg.SourceEndpointArn != old.SourceEndpointArn || cfg.TargetEndpointArn != old.TargetEndpointArn {
			if err := s.watchEndpoints(ctx, tx, cfg); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, mustJSON(cfg), 0)
			p.Set(ctx, repKey, mustJSON(rep), 0)
			if idChanged {
				p.Del(ctx, s.Key(kConfigID, old.ReplicationConfigIdentifier))
				p.Set(ctx, newIDKey, arn, 0)
			}
			for _, ep := range []string{old.SourceEndpointArn, old.TargetEndpointArn} {
				p.SRem(ctx, s.Key(kEndpointRef, ep), arn)
			}
			for _, ep := range []string{cfg.SourceEndpointArn, cfg.TargetEndpointArn} {
				p.SAdd(ctx, s.Key(kEndpointRef, ep), arn)
			}
			return nil
		})
		outC, outR = cfg, rep
		return err
	}, key, repKey)
	return outC, outR, err
}

// DeleteConfig removes a config, its replication, statistics and tags, if
// check (given both) allows it.
func (s *Store) DeleteConfig(ctx context.Context, arn string, check func(*Config, *ReplicationRecord) error) (*Config, error) {
	key, repKey := s.Key(kConfig, arn), s.Key(kReplication, arn)
	var out *Config
	err := s.tx(ctx, func(tx *redis.Tx) error {
		cfg, rep, err := s.configPair(ctx, tx, arn)
		if err != nil {
			return err
		}
		if err := check(cfg, rep); err != nil {
			return err
		}
		// The drop of what the replication left on its source carries the
		// source endpoint as it is now (its password still sealed for it):
		// the endpoint may be deleted or changed before the drop is done.
		var src EndpointRecord
		if err := getJSON(ctx, tx, s.Key(kEndpoint, cfg.SourceEndpointArn), &src); err != nil {
			return fmt.Errorf("the source endpoint of %s: %w", cfg.ReplicationConfigIdentifier, err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key, repKey, s.Key(kConfigID, cfg.ReplicationConfigIdentifier), s.Key(kTableStats, arn), s.Key(kStatsBase, arn), s.Key(kTags, arn))
			p.SRem(ctx, s.Key(kConfigs, ""), arn)
			p.SRem(ctx, s.Key(kEndpointRef, cfg.TargetEndpointArn), arn)
			p.SRem(ctx, s.Key(kEndpointRef, cfg.SourceEndpointArn), arn)
			// What the replication left on its source (a slot that holds
			// WAL) is dropped by the control loop.
			p.HSet(ctx, s.Key(kDrops, ""), arn, mustJSON(SourceDrop{ConfigArn: arn, ReplicationConfigIdentifier: cfg.ReplicationConfigIdentifier, Source: src}))
			return nil
		})
		out = cfg
		return err
	}, key, repKey)
	return out, err
}

// SourceDrop is what a deleted replication config left on its source to
// drop: the capture resources (PostgreSQL's slot and publications) named
// after its identifier, on its source endpoint as it was at the deletion.
type SourceDrop struct {
	ConfigArn                   string
	ReplicationConfigIdentifier string
	Source                      EndpointRecord
}

// SourceDrops returns the drops that wait.
func (s *Store) SourceDrops(ctx context.Context) ([]SourceDrop, error) {
	m, err := s.rdb.HGetAll(ctx, s.Key(kDrops, "")).Result()
	if err != nil {
		return nil, err
	}
	out := make([]SourceDrop, 0, len(m))
	for _, v := range m {
		var d SourceDrop
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConfigArn < out[j].ConfigArn })
	return out, nil
}

// SourceDropped records that d is done.
func (s *Store) SourceDropped(ctx context.Context, d SourceDrop) error {
	return s.rdb.HDel(ctx, s.Key(kDrops, ""), d.ConfigArn).Err()
}

// Replication returns the replication of a config, or ErrNotFound.
func (s *Store) Replication(ctx context.Context, arn string) (*ReplicationRecord, error) {
	var rep ReplicationRecord
	if err := getJSON(ctx, s.rdb, s.Key(kReplication, arn), &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// Replications returns the replication of every config, oldest first.
func (s *Store) Replications(ctx context.Context) ([]*ReplicationRecord, error) {
	var out []*ReplicationRecord
	err := s.all(ctx, kConfigs, kReplication, func(b []byte) error {
		var r ReplicationRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].ReplicationCreateTime, out[j].ReplicationCreateTime
		if a == nil || b == nil {
			return out[i].ReplicationConfigArn < out[j].ReplicationConfigArn
		}
		return older(a.Time, b.Time, out[i].ReplicationConfigArn, out[j].ReplicationConfigArn)
	})
	return out, err
}

// UpdateReplication is one atomic compare-and-set of a replication: fn
// sees the current record and changes it, or returns an error that leaves
// it unchanged. Of concurrent updates, each runs against the state the
// previous winner left.
func (s *Store) UpdateReplication(ctx context.Context, arn string, fn func(*ReplicationRecord) error) (*ReplicationRecord, error) {
	key := s.Key(kReplication, arn)
	var out *ReplicationRecord
	err := s.tx(ctx, func(tx *redis.Tx) error {
		var rep ReplicationRecord
		if err := getJSON(ctx, tx, key, &rep); err != nil {
			return err
		}
		if err := fn(&rep); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, mustJSON(&rep), 0)
			// The deprovision timer follows the record, in the same
			// transaction: set while capacity waits to be released.
			if due, ok := deprovisionDue(&rep); ok {
				p.ZAdd(ctx, s.Key(kTimers, "deprovision"), redis.Z{Score: float64(due.UnixMilli()), Member: arn})
			} else {
				p.ZRem(ctx, s.Key(kTimers, "deprovision"), arn)
			}
			return nil
		})
		out = &rep
		return err
	}, key)
	return out, err
}

// deprovisionDue says when a replication's capacity is to be released: a
// stopped or failed replication that still holds capacity, at its
// ReplicationDeprovisionTime.
func deprovisionDue(rep *ReplicationRecord) (time.Time, bool) {
	if rep.ReplicationDeprovisionTime == nil || rep.ProvisionData == nil || rep.ProvisionData.ProvisionState != Provisioned {
		return time.Time{}, false
	}
	if rep.Status != StatusStopped && rep.Status != StatusFailed {
		return time.Time{}, false
	}
	return rep.ReplicationDeprovisionTime.Time, true
}

// DueDeprovisions returns the replications whose deprovision time has
// come, oldest first. Claiming one is the caller's compare-and-set on the
// record (UpdateReplication), so sweepers running at once do it once.
func (s *Store) DueDeprovisions(ctx context.Context, now time.Time) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, s.Key(kTimers, "deprovision"), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
}

// Queued work: an API that cannot act on replicators itself (the Lambda
// function) queues what it decided — a start (or a table reload, which
// restarts the replicator), or a stop — and whoever runs replicators
// claims it from the queue.
const (
	QueueStarts  = "starts"
	QueueReloads = "reloads"
	QueueStops   = "stops"
)

// Enqueue puts replication arn on queue (QueueStarts, QueueReloads or
// QueueStops); it is there once however often it is queued.
func (s *Store) Enqueue(ctx context.Context, queue, arn string) error {
	return s.rdb.ZAdd(ctx, s.Key(kQueue, queue), redis.Z{Score: float64(time.Now().UnixMilli()), Member: arn}).Err()
}

// Queued returns what waits on queue, oldest first.
func (s *Store) Queued(ctx context.Context, queue string) ([]string, error) {
	return s.rdb.ZRange(ctx, s.Key(kQueue, queue), 0, -1).Result()
}

// Dequeue claims arn from queue: true for the one caller that removed it.
func (s *Store) Dequeue(ctx context.Context, queue, arn string) (bool, error) {
	n, err := s.rdb.ZRem(ctx, s.Key(kQueue, queue), arn).Result()
	return n == 1, err
}

// PutTableStats replaces a replication's table statistics.
func (s *Store) PutTableStats(ctx context.Context, arn string, stats []TableStatistics) error {
	return s.rdb.Set(ctx, s.Key(kTableStats, arn), mustJSON(stats), 0).Err()
}

// CarryTableStats starts a run's statistics. A resumed run counts on from
// the statistics of the runs before it, which are kept as its base; any
// other start begins from nothing, as DMS does on a reload.
// It returns the base.
func (s *Store) CarryTableStats(ctx context.Context, arn string, resumed bool) ([]TableStatistics, error) {
	if !resumed {
		return nil, s.rdb.Del(ctx, s.Key(kTableStats, arn), s.Key(kStatsBase, arn)).Err()
	}
	stats, err := s.TableStats(ctx, arn)
	if err != nil {
		return nil, err
	}
	return stats, s.rdb.Set(ctx, s.Key(kStatsBase, arn), mustJSON(stats), 0).Err()
}

// TableStatsBase returns what CarryTableStats kept for the current run.
func (s *Store) TableStatsBase(ctx context.Context, arn string) ([]TableStatistics, error) {
	var out []TableStatistics
	err := getJSON(ctx, s.rdb, s.Key(kStatsBase, arn), &out)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return out, err
}

// TableStats returns a replication's table statistics (none before its
// first start).
func (s *Store) TableStats(ctx context.Context, arn string) ([]TableStatistics, error) {
	var out []TableStatistics
	err := getJSON(ctx, s.rdb, s.Key(kTableStats, arn), &out)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return out, err
}

func (s *Store) setTags(ctx context.Context, p redis.Pipeliner, arn string, tags []Tag) {
	if len(tags) == 0 {
		return
	}
	kv := make([]any, 0, 2*len(tags))
	for _, t := range tags {
		kv = append(kv, t.Key, t.Value)
	}
	p.HSet(ctx, s.Key(kTags, arn), kv...)
}

// AddTags adds or replaces tags of a resource.
func (s *Store) AddTags(ctx context.Context, arn string, tags []Tag) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		s.setTags(ctx, p, arn, tags)
		return nil
	})
	return err
}

// RemoveTags removes tags of a resource by key.
func (s *Store) RemoveTags(ctx context.Context, arn string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.rdb.HDel(ctx, s.Key(kTags, arn), keys...).Err()
}

// Tags returns a resource's tags, sorted by key.
func (s *Store) Tags(ctx context.Context, arn string) ([]Tag, error) {
	m, err := s.rdb.HGetAll(ctx, s.Key(kTags, arn)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Tag, 0, len(m))
	for k, v := range m {
		out = append(out, Tag{Key: k, Value: v, ResourceArn: arn})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
