package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Leases. A replicator acts for a replication only while it holds the
// replication's lease: a key that names the holder and expires unless the
// holder renews it. Taking a lease increments the replication's fencing
// token, which the replicator writes with every target commit, so a
// replicator that lost its lease (frozen, partitioned) cannot commit once
// its successor has written a higher token. The deadlines are also kept in
// a sorted set, so a sweep finds lapsed leases without scanning keys.

const (
	kLease   = "lease"   // arn → "token holder", expiring
	kFence   = "fence"   // arn → last fencing token handed out
	kStats   = "rstats"  // arn → the replicator's last statistics (JSON), expiring
	kHandoff = "handoff" // arn → a sealed task document waiting for its replicator
)

// ErrLeaseHeld is returned when another holder has the lease.
var ErrLeaseHeld = errors.New("the lease is held by another replicator")

// ErrLeaseLost is returned by a renewal when the lease is no longer the
// renewer's: it lapsed, and maybe another replicator took it.
var ErrLeaseLost = errors.New("the lease was lost")

// acquireLease takes the lease when it is free, or renews it for the
// holder it already belongs to. KEYS: lease, fence, leases zset. ARGV:
// holder, ttl ms, deadline ms, arn. Returns the token, or -1 and the holder.
var acquireLease = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  local holder = string.sub(cur, sp + 1)
  if holder ~= ARGV[1] then return {-1, holder} end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return {tonumber(string.sub(cur, 1, sp - 1)), holder}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return {token, ARGV[1]}
`)

// renewLease extends the lease if it is still the holder's with that
// token. KEYS: lease, leases zset. ARGV: "token holder", ttl ms, deadline
// ms, arn.
var renewLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`)

// releaseLease drops the lease if it is the holder's. KEYS: lease, leases
// zset. ARGV: "token holder", arn.
var releaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

func (s *Store) leasesKey() string { return s.Key(kTimers, "leases") }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func deadline(ttl time.Duration) string {
	return strconv.FormatInt(time.Now().Add(ttl).UnixMilli(), 10)
}

// AcquireLease takes replication arn's lease for holder for ttl and
// returns its fencing token, higher than every token handed out before for
// arn. It fails with ErrLeaseHeld while another holder has it.
func (s *Store) AcquireLease(ctx context.Context, arn, holder string, ttl time.Duration) (int64, error) {
	res, err := acquireLease.Run(ctx, s.rdb, []string{s.Key(kLease, arn), s.Key(kFence, arn), s.leasesKey()},
		holder, ms(ttl), deadline(ttl), arn).Slice()
	if err != nil {
		return 0, err
	}
	token, _ := res[0].(int64)
	if token < 0 {
		return 0, fmt.Errorf("%w (%v)", ErrLeaseHeld, res[1])
	}
	return token, nil
}

func leaseValue(holder string, token int64) string {
	return strconv.FormatInt(token, 10) + " " + holder
}

// RenewLease extends holder's lease with token for ttl from now, or fails
// with ErrLeaseLost.
func (s *Store) RenewLease(ctx context.Context, arn, holder string, token int64, ttl time.Duration) error {
	n, err := renewLease.Run(ctx, s.rdb, []string{s.Key(kLease, arn), s.leasesKey()},
		leaseValue(holder, token), ms(ttl), deadline(ttl), arn).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives up holder's lease, if it still has it: a replicator
// that ends cleanly hands its replication back at once.
func (s *Store) ReleaseLease(ctx context.Context, arn, holder string, token int64) error {
	return releaseLease.Run(ctx, s.rdb, []string{s.Key(kLease, arn), s.leasesKey()}, leaseValue(holder, token), arn).Err()
}

// LeaseHolder returns who holds replication arn's lease and with which
// token; an empty holder when nobody does.
func (s *Store) LeaseHolder(ctx context.Context, arn string) (string, int64, error) {
	v, err := s.rdb.Get(ctx, s.Key(kLease, arn)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	tok, holder, _ := strings.Cut(v, " ")
	t, _ := strconv.ParseInt(tok, 10, 64)
	return holder, t, nil
}

// claimLapsed removes arn from the lease deadlines if its lease has
// lapsed, and says whether it did. KEYS: lease, leases zset. ARGV: arn,
// now ms.
var claimLapsed = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// LapsedLeases returns the replications whose lease deadline has passed
// with the lease gone: their replicator stopped renewing it (it died, or
// it is frozen, or cut off). Each is claimed by removing its deadline, so
// of several sweepers one gets it.
func (s *Store) LapsedLeases(ctx context.Context, now time.Time) ([]string, error) {
	due, err := s.rdb.ZRangeByScore(ctx, s.leasesKey(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, arn := range due {
		n, err := claimLapsed.Run(ctx, s.rdb, []string{s.Key(kLease, arn), s.leasesKey()}, arn, strconv.FormatInt(now.UnixMilli(), 10)).Int()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			out = append(out, arn)
		}
	}
	return out, nil
}

// PutReplicatorStats stores a replicator's statistics document for ttl:
// how a replicator that is not a child of the server (an ECS task) reports.
func (s *Store) PutReplicatorStats(ctx context.Context, arn string, doc []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.Key(kStats, arn), doc, ttl).Err()
}

// ReplicatorStats returns the last statistics document a replicator
// stored, nil when there is none.
func (s *Store) ReplicatorStats(ctx context.Context, arn string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.Key(kStats, arn)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// PutHandoff leaves a sealed task document for the replicator a launcher
// starts elsewhere; it expires after ttl if nobody takes it.
func (s *Store) PutHandoff(ctx context.Context, arn, sealed string, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.Key(kHandoff, arn), sealed, ttl).Err()
}

// TakeHandoff returns the sealed task document left for arn and deletes
// it, so it is read once.
func (s *Store) TakeHandoff(ctx context.Context, arn string) (string, error) {
	v, err := s.rdb.GetDel(ctx, s.Key(kHandoff, arn)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: no task document is waiting for replication %s (it expired, or another replicator took it)", ErrNotFound, arn)
	}
	return v, err
}

const kExit = "rexit" // arn → the last replicator's error message, for launchers that cannot read its output

// PutReplicatorExit records why a replicator ended with an error, for a
// launcher that cannot read its output (an ECS task's is in CloudWatch).
func (s *Store) PutReplicatorExit(ctx context.Context, arn, message string) error {
	return s.rdb.Set(ctx, s.Key(kExit, arn), message, time.Hour).Err()
}

// ReplicatorExit returns and forgets what PutReplicatorExit recorded ("" if
// nothing).
func (s *Store) ReplicatorExit(ctx context.Context, arn string) (string, error) {
	v, err := s.rdb.GetDel(ctx, s.Key(kExit, arn)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// ExpectLease gives a replicator being launched until within to take
// replication arn's lease: if none does (it died first), the lease sweep
// finds the deadline passed and launches another.
func (s *Store) ExpectLease(ctx context.Context, arn string, within time.Duration) error {
	return s.rdb.ZAdd(ctx, s.leasesKey(), redis.Z{Score: float64(time.Now().Add(within).UnixMilli()), Member: arn}).Err()
}
