// Package api answers the DMS Serverless API: AWS JSON 1.1 requests signed
// with SigV4 (and REST aliases for webhooks) come in; records in the Redis
// store and requests to start or stop replicators go out. It checks every
// request fully before it changes anything, so a bad request leaves no trace.
package api
