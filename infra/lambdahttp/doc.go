// Package lambdahttp runs an http.Handler as an AWS Lambda function behind an
// API Gateway HTTP API (payload format 2.0). An event comes in and becomes an
// *http.Request with the path, query, headers and body the client sent, byte
// for byte, because SigV4 signatures cover them; the handler's response
// leaves as the event API Gateway turns back into HTTP. It exists so the API
// handler that `sluice serve` runs behind net/http runs unchanged in Lambda.
package lambdahttp
