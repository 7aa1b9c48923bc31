package sigv4

import "errors"

// Sentinel errors. Verify wraps each with what exactly is wrong; none of the
// messages carry the secret key or the expected signature.
var (
	// ErrUnsigned: no usable AWS4-HMAC-SHA256 Authorization header or X-Amz-Date.
	ErrUnsigned = errors.New("request is not signed with AWS Signature Version 4")
	// ErrUnknownKey: the access key id is not the one the server accepts.
	ErrUnknownKey = errors.New("access key is not known")
	// ErrScope: the credential scope's date, region or service is wrong.
	ErrScope = errors.New("credential scope does not match")
	// ErrExpired: X-Amz-Date is too far from the server's clock.
	ErrExpired = errors.New("request time is too far from the server's")
	// ErrSignature: the signature, or the body's declared hash, does not match.
	ErrSignature = errors.New("signature does not match")
)
