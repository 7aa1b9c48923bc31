package secrets

import "errors"

// Sentinel errors; every error this package returns wraps one of them.
var (
	// ErrMasterKey: SLUICE_MASTER_KEY is not 32 bytes of base64.
	ErrMasterKey = errors.New("invalid master key")
	// ErrSealed: a sealed password cannot be opened (wrong key, wrong
	// endpoint, changed or malformed value).
	ErrSealed = errors.New("sealed password cannot be opened")
	// ErrSecret: a Secrets Manager secret cannot be read or used.
	ErrSecret = errors.New("unusable Secrets Manager secret")
)
