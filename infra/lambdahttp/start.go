package lambdahttp

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluicedb/sluice/infra/telemetry"
)

// initTimeout bounds a function's start, well inside the 10 s Lambda
// allows for it, so an unreachable Redis is reported rather than cut off.
const initTimeout = 5 * time.Second

// Start is the main of each Sluice function: JSON logs, telemetry from the
// OTEL_* variables (flushed before each invocation returns: Lambda may
// freeze the process right after), then setup, whose failure is reported
// to the Runtime API with its cause before the process exits, then the
// handler setup returned, for every event.
func Start[E, R any](service string, setup func(ctx context.Context, log *slog.Logger) (func(context.Context, E) (R, error), error)) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	// aws-lambda-go logs through the standard logger; this makes its lines
	// JSON as well.
	slog.SetDefault(log)
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	h, err := func() (func(context.Context, E) (R, error), error) {
		if _, err := telemetry.Setup(ctx, service); err != nil {
			return nil, err
		}
		return setup(ctx, log)
	}()
	if err != nil {
		log.Error("the function cannot start", "function", service, "error", err.Error())
		if rerr := ReportInitError(ctx, err); rerr != nil {
			log.Error("could not tell Lambda why", "error", rerr.Error())
		}
		cancel()
		os.Exit(1)
	}
	cancel()
	lambda.Start(telemetry.Flushing(h))
}
