package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors that end a replication with a cause and a fix.
var (
	ErrWalLevel       = errors.New("the source's wal_level is not logical")
	ErrNoReplication  = errors.New("the source user may not replicate")
	ErrSlotMissing    = errors.New("the replication slot is gone")
	ErrSchemaChanged  = errors.New("a source table changed shape")
	ErrNoSelectAccess = errors.New("the source user may not read a selected table")
)

// classify turns a server error into one of the errors above when it is one.
func classify(err error, slot string) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "42704" && strings.Contains(pe.Message, "replication slot"):
		return fmt.Errorf("%w: slot %q does not exist on the source (was it dropped?). Changes after the last checkpoint cannot be recovered: restart the replication with reload-target", ErrSlotMissing, slot)
	case pe.Code == "42501" && strings.Contains(pe.Message, "replication"):
		return fmt.Errorf("%w: %s. Fix: ALTER ROLE <user> REPLICATION (or on RDS: GRANT rds_replication TO <user>)", ErrNoReplication, pe.Message)
	case pe.Code == "55000" && strings.Contains(pe.Message, "wal_level"):
		return fmt.Errorf("%w: %s. Fix: ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL", ErrWalLevel, pe.Message)
	}
	return err
}

// slotBusyWait is how long a slot may stay in use by a previous replicator
// whose session the server has not yet noticed is gone (after a kill -9).
const slotBusyWait = 30 * time.Second

// whileSlotBusy runs f again while it fails because the slot is in use.
// A replicator that holds the replication's lease (TakeOver) ends the
// session that holds the slot: it belongs to a replicator that lost the
// lease, maybe frozen, whose connection the server would keep for
// wal_sender_timeout.
func (s *Source) whileSlotBusy(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(slotBusyWait)
	for {
		err := f()
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || time.Now().After(deadline) {
			return err
		}
		if s.cfg.TakeOver {
			s.endSlotHolder(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// endSlotHolder ends the session that holds the slot.
func (s *Source) endSlotHolder(ctx context.Context) {
	conn, err := pgx.Connect(ctx, s.cfg.ConnString)
	if err != nil {
		return // the retry reports what is wrong
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var pid *int32
	if conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", s.cfg.Slot).Scan(&pid) == nil && pid != nil {
		_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend($1)", *pid)
	}
}
