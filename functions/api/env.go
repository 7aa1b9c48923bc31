package api

import (
	"context"
	"log/slog"

	"github.com/sluicedb/sluice/infra/config"
	"github.com/sluicedb/sluice/infra/sigv4"
	"github.com/sluicedb/sluice/infra/store"
)

// New builds the handler from the environment contract, the same way for
// `sluice serve` and for the Lambda function.
func New(cfg *config.Config, st *store.Store, control Control, log *slog.Logger) (*Handler, error) {
	if err := cfg.CheckAPI(); err != nil {
		return nil, err
	}
	box, err := cfg.Box()
	if err != nil {
		return nil, err
	}
	if box == nil {
		log.Warn("SLUICE_MASTER_KEY is not set: endpoints can only use SecretsManagerSecretId or no password")
	}
	h := Internal(cfg, st, control, log)
	h.Verifier = &sigv4.Verifier{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, Region: cfg.Region, Service: "dms"}
	h.Box, h.TrustIAM = box, cfg.TrustIAM
	return h, nil
}

// Queue is the Control of an API that cannot run replicators itself (the
// Lambda function): starts, table reloads and stops are queued in the store
// for the server that runs replicators (`sluice serve`, locally or with the
// ECS launcher) to carry out (control.Server.Consume).
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
// verification, ARNs in the configured region and account.
func Internal(cfg *config.Config, st *store.Store, control Control, log *slog.Logger) *Handler {
	return &Handler{Store: st, Control: control, Log: log, Region: cfg.Region, Account: cfg.AccountID}
}
