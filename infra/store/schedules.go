package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Local schedules: what EventBridge Scheduler keeps in AWS, kept in Redis
// for `sluice serve` to evaluate. Each schedule is a record; its next fire
// time is its score in a sorted set, and firing it moves the score on by a
// compare-and-set, so of several servers one fires each occurrence.

const (
	kSchedule  = "sched"  // name → Schedule (JSON)
	kSchedules = "scheds" // set of names
)

// Schedule is one local schedule, in EventBridge Scheduler's terms.
type Schedule struct {
	Name       string
	Expression string // at(…), rate(…) or cron(…)
	Timezone   string `json:",omitempty"`
	// Payload is the JSON the schedule function receives.
	Payload     json.RawMessage
	Description string    `json:",omitempty"`
	CreatedAt   time.Time // rate() schedules count from it
	// NextRun is when it fires next; nil once an at() schedule has fired
	// or a cron's years are over.
	NextRun *time.Time `json:",omitempty"`
	LastRun *time.Time `json:",omitempty"`
}

func (s *Store) scheduleTimers() string { return s.Key(kTimers, "schedules") }

// CreateSchedule stores a new schedule; ErrExists if the name is taken.
func (s *Store) CreateSchedule(ctx context.Context, sc *Schedule) error {
	key := s.Key(kSchedule, sc.Name)
	return s.tx(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: a schedule named %s exists: delete it first or choose another name", ErrExists, sc.Name)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, mustJSON(sc), 0)
			p.SAdd(ctx, s.Key(kSchedules, ""), sc.Name)
			if sc.NextRun != nil {
				p.ZAdd(ctx, s.scheduleTimers(), redis.Z{Score: float64(sc.NextRun.UnixMilli()), Member: sc.Name})
			}
			return nil
		})
		return err
	}, key)
}

// Schedules returns every local schedule, by name.
func (s *Store) Schedules(ctx context.Context) ([]*Schedule, error) {
	var out []*Schedule
	err := s.all(ctx, kSchedules, kSchedule, func(b []byte) error {
		var sc Schedule
		if err := json.Unmarshal(b, &sc); err != nil {
			return err
		}
		out = append(out, &sc)
		return nil
	})
	return out, err
}

// DeleteSchedule removes a schedule; ErrNotFound if there is none.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	n, err := s.rdb.Del(ctx, s.Key(kSchedule, name)).Result()
	if err != nil {
		return err
	}
	s.rdb.SRem(ctx, s.Key(kSchedules, ""), name)
	s.rdb.ZRem(ctx, s.scheduleTimers(), name)
	if n == 0 {
		return fmt.Errorf("%w: no schedule named %s", ErrNotFound, name)
	}
	return nil
}

// DueSchedules returns the names of the schedules whose next run has come.
func (s *Store) DueSchedules(ctx context.Context, now time.Time) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, s.scheduleTimers(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
}

// errFired ends a claim another server made first.
var errFired = errors.New("fired elsewhere")

// ClaimSchedule claims the due run of schedule name: next computes the run
// after it from the schedule. It returns the schedule as it was (its
// NextRun is the run claimed) and false when another server claimed it
// first or it is not due.
func (s *Store) ClaimSchedule(ctx context.Context, name string, now time.Time, next func(*Schedule) *time.Time) (*Schedule, bool, error) {
	key := s.Key(kSchedule, name)
	var claimed Schedule
	err := s.tx(ctx, func(tx *redis.Tx) error {
		var sc Schedule
		if err := getJSON(ctx, tx, key, &sc); err != nil {
			return err
		}
		if sc.NextRun == nil || sc.NextRun.After(now) {
			return errFired
		}
		claimed = sc
		ran := now
		sc.LastRun = &ran
		sc.NextRun = next(&sc)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, mustJSON(&sc), 0)
			if sc.NextRun != nil {
				p.ZAdd(ctx, s.scheduleTimers(), redis.Z{Score: float64(sc.NextRun.UnixMilli()), Member: name})
			} else {
				p.ZRem(ctx, s.scheduleTimers(), name)
			}
			return nil
		})
		return err
	}, key)
	if errors.Is(err, errFired) {
		return nil, false, nil
	}
	if errors.Is(err, ErrNotFound) {
		// Deleted meanwhile: drop its timer.
		s.rdb.ZRem(ctx, s.scheduleTimers(), name)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &claimed, true, nil
}
