package pgsource

import (
	"context"
	"fmt"
	"time"
)

// heartbeatPrefix marks the heartbeat's records in the WAL, for anyone
// reading it with another decoder.
const heartbeatPrefix = "sluice_heartbeat"

// heartbeat writes a record to the source database's WAL now and then every
// interval until ctx ends (DMS's HeartbeatEnable). The stream confirms the
// server's WAL end while nothing of its tables changes, but the server only
// moves the slot's restart position past WAL it decodes in this database:
// a database whose tables stay idle on a busy cluster, or a cluster that is
// quiet apart from checkpoints, would otherwise keep WAL the slot no longer
// needs. A logical message is used rather than a table DMS-style, so the
// heartbeat creates nothing on the source and its records are not data: it
// is non-transactional, so pgoutput never sends it as a change.
func (s *Source) heartbeat(ctx context.Context, interval time.Duration) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(false, $1, $2)`, heartbeatPrefix, s.cfg.Slot); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("heartbeat: write to the source's WAL (PostgreSQLSettings.HeartbeatEnable): %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
