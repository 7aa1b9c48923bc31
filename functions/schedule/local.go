package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/sluicedb/sluice/infra/store"
)

// Local keeps schedules in Redis and fires them from `sluice serve`, with
// the expressions and payloads EventBridge Scheduler takes, for
// deployments without AWS.
type Local struct {
	Store   *store.Store
	Handler *Handler
	Log     *slog.Logger
}

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)

// Create validates and stores a schedule; its first run is computed now.
func (l *Local) Create(ctx context.Context, sc *store.Schedule) error {
	if !nameRE.MatchString(sc.Name) {
		return fmt.Errorf("schedule name %q is not valid: use 1 to 64 letters, digits, '.', '_' or '-'", sc.Name)
	}
	ev, err := ParseEvent(sc.Payload)
	if err != nil {
		return err
	}
	if ev.Action == ActionSweep {
		return errors.New("the sweep is scheduled by Sluice itself: schedule start or stop")
	}
	if sc.CreatedAt.IsZero() {
		sc.CreatedAt = time.Now().UTC()
	}
	next, err := nextRun(sc, sc.CreatedAt)
	if err != nil {
		return err
	}
	if next == nil {
		return fmt.Errorf("schedule %s would never run: %s has no time after now", sc.Name, sc.Expression)
	}
	sc.NextRun = next
	return l.Store.CreateSchedule(ctx, sc)
}

// Fire runs the schedules that are due at now, each claimed first so that
// of several servers one runs it. A schedule that fails is logged, as
// EventBridge Scheduler would record a failed invocation, and the others
// go on.
func (l *Local) Fire(ctx context.Context, now time.Time) error {
	due, err := l.Store.DueSchedules(ctx, now)
	if err != nil {
		return err
	}
	for _, name := range due {
		sc, ok, err := l.Store.ClaimSchedule(ctx, name, now, func(sc *store.Schedule) *time.Time {
			next, err := nextRun(sc, now)
			if err != nil {
				return nil // it parsed when it was created
			}
			return next
		})
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		ev, err := ParseEvent(sc.Payload)
		if err == nil {
			var res Result
			res, err = l.Handler.Handle(ctx, ev)
			if err == nil {
				b, _ := json.Marshal(res)
				l.Log.Info("schedule fired", "schedule", name, "result", string(b))
				continue
			}
		}
		l.Log.Warn("schedule failed", "schedule", name, "error", err)
	}
	return nil
}

// nextRun is a schedule's first run after after, nil when it has none.
func nextRun(sc *store.Schedule, after time.Time) (*time.Time, error) {
	e, err := ParseExpr(sc.Expression, sc.Timezone)
	if err != nil {
		return nil, err
	}
	// A rate counts from the schedule's creation, as in EventBridge.
	e.Anchor(sc.CreatedAt)
	t, ok := e.Next(after)
	if !ok {
		return nil, nil
	}
	return &t, nil
}
