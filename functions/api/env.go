package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/sigv4"
	"github.com/sluicedb/sluice/infra/store"
)

// Env returns the value of environment variable name, or def when it is
// unset or empty.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// FromEnv builds the handler from the environment contract in DESIGN.md
// (SLUICE_ACCESS_KEY_ID, SLUICE_SECRET_ACCESS_KEY, SLUICE_REGION,
// SLUICE_ACCOUNT_ID, SLUICE_MASTER_KEY), the same way for `sluice serve`
// and for the Lambda function.
func FromEnv(st *store.Store, control Control, log *slog.Logger) (*Handler, error) {
	keyID, secret := os.Getenv("SLUICE_ACCESS_KEY_ID"), os.Getenv("SLUICE_SECRET_ACCESS_KEY")
	var trustIAM bool
	switch a := Env("SLUICE_API_AUTH", "sigv4"); a {
	case "sigv4":
	case "iam":
		trustIAM = true
	default:
		return nil, fmt.Errorf("SLUICE_API_AUTH %q is not sigv4 (clients sign for service dms with SLUICE_ACCESS_KEY_ID) or iam (API Gateway's IAM authorizer verifies callers)", a)
	}
	if (keyID == "" || secret == "") && !trustIAM {
		return nil, errors.New("SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY must be set: they are the key pair clients sign requests with (aws configure, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the client)")
	}
	region, account := Env("SLUICE_REGION", "us-east-1"), Env("SLUICE_ACCOUNT_ID", "000000000000")
	var box *secrets.Box
	if k := os.Getenv("SLUICE_MASTER_KEY"); k != "" {
		var err error
		if box, err = secrets.NewBox(k); err != nil {
			return nil, fmt.Errorf("SLUICE_MASTER_KEY: %w", err)
		}
	} else {
		log.Warn("SLUICE_MASTER_KEY is not set: endpoints can only use SecretsManagerSecretId or no password")
	}
	return &Handler{
		Store:    st,
		Verifier: &sigv4.Verifier{AccessKeyID: keyID, SecretAccessKey: secret, Region: region, Service: "dms"},
		Box:      box, Region: region, Account: account, Control: control,
		TrustIAM: trustIAM,
		Log:      log,
	}, nil
}

// Queue is the Control of an API that cannot run replicators itself (the
// Lambda function): starts, table reloads and stops are queued in the store
// for the server that runs replicators (`sluice serve`, locally or with the
// ECS launcher) to carry out (runner.Consume).
type Queue struct{ Store *store.Store }

// Start implements Control.
func (q Queue) Start(ctx context.Context, arn string) error {
	return q.Store.Enqueue(ctx, store.QueueStarts, arn)
}

// Stop implements Control.
func (q Queue) Stop(ctx context.Context, arn string) error {
	return q.Store.Enqueue(ctx, store.QueueStops, arn)
}

// Reload implements Control: the request is in the replication's record.
func (q Queue) Reload(ctx context.Context, arn string) error {
	return q.Store.Enqueue(ctx, store.QueueReloads, arn)
}

// Internal builds a handler for callers in the same process or function
// that do not come through HTTP (the schedule function): no request
// verification, ARNs in SLUICE_REGION and SLUICE_ACCOUNT_ID.
func Internal(st *store.Store, control Control, log *slog.Logger) *Handler {
	return &Handler{
		Store: st, Control: control, Log: log,
		Region: Env("SLUICE_REGION", "us-east-1"), Account: Env("SLUICE_ACCOUNT_ID", "000000000000"),
	}
}
