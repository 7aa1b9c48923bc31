package store

import "errors"

// Sentinel errors; the API maps each to a DMS fault.
var (
	ErrNotFound   = errors.New("not found")
	ErrExists     = errors.New("already exists")
	ErrInUse      = errors.New("in use")
	ErrContention = errors.New("too many concurrent updates")
)
