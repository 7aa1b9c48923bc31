package pgsource

import (
	"errors"
	"fmt"
	"strings"

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
