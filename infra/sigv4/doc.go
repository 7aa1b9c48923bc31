// Package sigv4 verifies AWS Signature Version 4 on the requests that reach the
// emulated DMS API. A request and its already-read body come in; nil, or an
// error wrapping one of the sentinels in errors.go that says what is wrong,
// comes out. It rebuilds the canonical request from exactly the headers the
// client signed, so any conforming client (the AWS SDKs, the CLI) verifies.
package sigv4
