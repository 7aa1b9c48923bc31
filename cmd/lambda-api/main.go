// Command lambda-api is the DMS API as an AWS Lambda function behind an API
// Gateway HTTP API (payload format 2.0). It reads the environment contract
// of `sluice serve` (DESIGN.md), keeps its state in the Redis at
// SLUICE_REDIS_URL, and queues the starts, reloads and stops it decides for
// the server that runs replicators, since a function cannot run them. Build
// it with -tags lambda.norpc for the provided.al2023 runtime, and put it on
// the HTTP API's $default stage: a named stage's name is part of the path
// the client signs, and the API does not route it.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicedb/sluice/functions/api"
	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/lambdahttp"
)

func main() { lambdahttp.Start("sluice-api", setup) }

func setup(ctx context.Context, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	// A deployment passes the keys as Secrets Manager ARNs (template.yaml):
	// config.Load reads them.
	cfg, st, err := config.Open(ctx)
	if err != nil {
		return nil, err
	}
	h, err := api.New(cfg, st, api.Queue{Store: st}, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Only the gateway's request context sets this header (lambdahttp).
	h.IAMCaller = lambdahttp.IAMCallerHeader
	return lambdahttp.Handler(h), nil
}
