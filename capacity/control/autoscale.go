package control

import (
	"cmp"
	"context"
	"time"

	"github.com/sluicedb/sluice/capacity"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
)

// autoscale feeds a running replication's utilization to the scaler and,
// when it decides on another size, relaunches the replicator at that size
// from its checkpoint: it stops gracefully (its position committed), and
// its exit report launches the new one. Only the report loop calls it, so
// the Scaler (not safe for concurrent use) has one caller.
func (s *Server) autoscale(ctx context.Context, rep *store.ReplicationRecord, snap *runtime.Snapshot) error {
	if s.Scaler == nil || snap.Phase != runtime.PhaseCDC {
		// A full load would start over: sizes change only while changes
		// are applied.
		return nil
	}
	if rep.Status != store.StatusRunning || rep.ProvisionData == nil || rep.ProvisionData.ProvisionedCapacityUnits == 0 {
		return nil
	}
	arn := rep.ReplicationConfigArn
	if s.runs.busy(arn) {
		return nil
	}
	minU, maxU, err := s.unitBounds(ctx, arn)
	if err != nil {
		return err
	}
	u := capacity.Utilization{CPU: snap.CPU, Lag: snap.Lag}
	if snap.BufferLimit > 0 {
		u.BufferFill = float64(snap.BufferBytes) / float64(snap.BufferLimit)
	}
	units := rep.ProvisionData.ProvisionedCapacityUnits
	to, why := s.Scaler.Observe(arn, units, minU, maxU, u, time.Now())
	if to == units || !s.runs.resize(arn, capacity.ForUnits(to, why)) {
		return nil
	}
	s.Log.Info("resizing a replication", "replication", rep.ReplicationConfigIdentifier, "from", units, "to", to, "reason", why)
	_, err = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		if rep.ProvisionData != nil {
			rep.ProvisionData.IsNewProvisioningAvailable = true
			rep.ProvisionData.DateNewProvisioningDataAvailable = store.At(time.Now())
			rep.ProvisionData.ReasonForNewProvisioningData = why
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.Launcher.Stop(ctx, arn)
}

// unitBounds returns a replication's Min/MaxCapacityUnits (DMS's defaults
// where the config is silent), from Redis on its run's first report.
func (s *Server) unitBounds(ctx context.Context, arn string) (int, int, error) {
	if b, ok := s.runs.getBounds(arn); ok {
		return b[0], b[1], nil
	}
	cfg, err := s.Store.Config(ctx, arn)
	if err != nil {
		return 0, 0, err
	}
	b := [2]int{1, capacity.ValidUnits[len(capacity.ValidUnits)-1]}
	if minU, maxU := cfg.UnitRange(); minU > 0 || maxU > 0 {
		b[0], b[1] = max(minU, b[0]), cmp.Or(maxU, b[1])
	}
	s.runs.setBounds(arn, b)
	return b[0], b[1], nil
}
