// Package schedule is the function EventBridge Scheduler invokes: user
// schedules that start and stop replications, and the every-minute sweep
// (deprovision timers, lapsed leases). In AWS it runs as the schedule
// Lambda; `sluice serve` calls it in-process, for the sweep and for the
// local schedules it keeps in Redis.
package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicedb/sluice/infra/store"
)

// Actions of an Event.
const (
	ActionStart = "start"
	ActionStop  = "stop"
	ActionSweep = "sweep"
)

// Event is the payload a schedule delivers.
type Event struct {
	Action               string `json:"action"`
	ReplicationConfigArn string `json:"replicationConfigArn,omitempty"`
	// StartReplicationType is start-replication, resume-processing or
	// reload-target; empty means start-replication on the first run and
	// resume-processing after.
	StartReplicationType store.StartType `json:"startReplicationType,omitempty"`
}

// Result says what the function did.
type Result struct {
	Action               string `json:"action"`
	ReplicationConfigArn string `json:"replicationConfigArn,omitempty"`
	// Status is the replication's status after the action.
	Status store.Status `json:"status,omitempty"`
	// Skipped says why nothing was done: a schedule that finds the
	// replication already started (or stopped) is not an error, or
	// EventBridge would retry it.
	Skipped string `json:"skipped,omitempty"`
}

// Replications is what the function needs of the API (api.Handler).
type Replications interface {
	StartReplication(ctx context.Context, arn string, startType store.StartType) (*store.ReplicationRecord, error)
	StopReplication(ctx context.Context, arn string) (*store.ReplicationRecord, error)
}

// Handler handles schedule events.
type Handler struct {
	API Replications
	// IsInvalidState recognizes the API's refusal of an action in the
	// replication's current status (api.IsInvalidState).
	IsInvalidState func(error) bool
	// Sweeps run on a sweep event, each whatever the others did.
	Sweeps []func(context.Context) error
	Log    *slog.Logger
}

// ParseEvent reads a payload, refusing what is not a schedule event.
func ParseEvent(b []byte) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, fmt.Errorf(`the schedule payload is not an event like {"action":"start","replicationConfigArn":"arn:aws:dms:…"}: %v`, err)
	}
	return ev, ev.validate()
}

func (ev Event) validate() error {
	switch ev.Action {
	case ActionStart, ActionStop:
		if ev.ReplicationConfigArn == "" {
			return fmt.Errorf("a %s event needs replicationConfigArn: the ARN of the replication config to %s", ev.Action, ev.Action)
		}
	case ActionSweep:
	default:
		return fmt.Errorf("action %q is not one of start, stop, sweep", ev.Action)
	}
	if ev.StartReplicationType != "" && ev.Action != ActionStart {
		return errors.New("startReplicationType goes only with action start")
	}
	return nil
}

// Handle carries out one event.
func (h *Handler) Handle(ctx context.Context, ev Event) (Result, error) {
	res := Result{Action: ev.Action, ReplicationConfigArn: ev.ReplicationConfigArn}
	if err := ev.validate(); err != nil {
		return res, err
	}
	var rep *store.ReplicationRecord
	var err error
	switch ev.Action {
	case ActionSweep:
		var errs []error
		for _, sweep := range h.Sweeps {
			errs = append(errs, sweep(ctx))
		}
		return res, errors.Join(errs...)
	case ActionStart:
		rep, err = h.API.StartReplication(ctx, ev.ReplicationConfigArn, ev.StartReplicationType)
	case ActionStop:
		rep, err = h.API.StopReplication(ctx, ev.ReplicationConfigArn)
	}
	if err != nil && h.IsInvalidState != nil && h.IsInvalidState(err) {
		res.Skipped = err.Error()
		h.Log.Info("scheduled action skipped", "action", ev.Action, "replication", ev.ReplicationConfigArn, "reason", err)
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("scheduled %s of %s: %w", ev.Action, ev.ReplicationConfigArn, err)
	}
	res.Status = rep.Status
	h.Log.Info("scheduled action done", "action", ev.Action, "replication", rep.ReplicationConfigIdentifier, "status", rep.Status)
	return res, nil
}
