package scheduler

import "errors"

// Sentinel errors.
var (
	// ErrExists: a schedule of that name is already in the group.
	ErrExists = errors.New("schedule exists")
	// ErrNotFound: no schedule of that name is in the group (or the group
	// itself is missing).
	ErrNotFound = errors.New("schedule not found")
	// ErrInvalid: the schedule is refused as given, by the checks here or
	// by EventBridge Scheduler; retrying it unchanged cannot succeed.
	ErrInvalid = errors.New("invalid schedule")
)
