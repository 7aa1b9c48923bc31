package control

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/telemetry"
)

// launchGrace is how long a replicator may take to start and take its
// lease (an ECS task pulls its image first).
const launchGrace = 2 * time.Minute

// launch starts the replicator and gives it until its lease is expected.
func (s *Server) launch(ctx context.Context, arn string, doc []byte, p capacity.Plan) (err error) {
	ctx, span := otel.Tracer(tracer).Start(ctx, "sluice.launch",
		trace.WithAttributes(telemetry.ReplicationKey.String(arn), telemetry.UnitsKey.Int(p.Units)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if err := s.Store.ExpectLease(ctx, arn, s.LeaseTTL+launchGrace); err != nil {
		return err
	}
	return s.Launcher.Launch(ctx, arn, doc, p.Size())
}

// carry starts a run's statistics and keeps its base.
func (s *Server) carry(ctx context.Context, arn string, resumed bool) error {
	base, err := s.Store.CarryTableStats(ctx, arn, resumed)
	if err != nil {
		return err
	}
	s.runs.setBase(arn, base)
	return nil
}

// relaunch launches a running replication's replicator again: after a
// reload or resize stopped it, when a new server adopts it, or when its
// replicator lost its lease. One that cannot be launched ends failed.
func (s *Server) relaunch(ctx context.Context, arn string) error {
	resize, resizing := s.runs.takeResize(arn)
	err := s.relaunchAt(ctx, arn, resize, resizing)
	if err == nil {
		return nil
	}
	s.Log.Warn("could not launch the replicator again", "replication", arn, "error", err)
	_, uerr := s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		return s.end(rep, lifecycle.StopFatal, "launch the replicator again: "+err.Error())
	})
	return uerr
}

func (s *Server) relaunchAt(ctx context.Context, arn string, resize capacity.Plan, resizing bool) error {
	t, cfg, err := s.task(ctx, arn)
	if err != nil {
		return err
	}
	rep, err := s.Store.Replication(ctx, arn)
	if err != nil {
		return err
	}
	var p capacity.Plan
	var doc []byte
	switch pd := rep.ProvisionData; {
	case resizing:
		p = resize
	case pd != nil && pd.ProvisionedCapacityUnits > 0:
		// The capacity it runs with stays until the autoscaler changes it.
		p = capacity.ForUnits(pd.ProvisionedCapacityUnits, pd.ReasonForNewProvisioningData)
	default:
		if p, doc, err = s.size(ctx, t, cfg); err != nil {
			return err
		}
	}
	if doc == nil {
		if doc, err = sized(t, p); err != nil {
			return err
		}
	}
	if err := s.carry(ctx, arn, true); err != nil {
		return err
	}
	if err := s.launch(ctx, arn, doc, p); err != nil {
		return err
	}
	if !resizing {
		return nil
	}
	_, err = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		rep.ProvisionData = &store.ProvisionData{
			ProvisionState: store.Provisioned, ProvisionedCapacityUnits: p.Units, DateProvisioned: store.At(time.Now()),
			ReasonForNewProvisioningData: p.Reason,
		}
		return nil
	})
	return err
}
