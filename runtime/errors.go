package runtime

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Retryable reports whether err is a passing fault (a lost connection, a
// server restarting, a deadlock) after which the replication can resume from
// the target's position, as opposed to a fault that needs a person (bad
// settings, missing privileges, a dropped slot). It is the one place that
// decides.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, starting up
			return true
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return true
		case pe.Code == "55006": // the slot is still held by a session that is going away
			return true
		}
		return false
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case 1053, 1927, 2006, 2013: // shutdown, killed, gone away, lost
			return true
		case 1205, 1213: // lock wait timeout, deadlock
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF")
}

// ErrNothingSelected is returned when the table mappings select no table.
var ErrNothingSelected = errors.New("the table mappings select no table")

// errCommitTimeReached ends the apply loop at StopAtCommitTime.
var errCommitTimeReached = errors.New("commit time reached")
