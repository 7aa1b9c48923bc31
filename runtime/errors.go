package runtime

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

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

// SilenceError is a server that stayed silent longer than a live one
// does: a change stream that heard nothing (its server sends keepalives
// or heartbeats every second), or a target that did not answer within
// its ExecuteTimeout. It means a network that drops everything, which TCP
// would take minutes to report. It is a net.Error that times out, so
// Retryable takes it as the passing fault it is.
type SilenceError struct {
	Waited time.Duration
	// Why says what a live server would have done in the time.
	Why string
}

func (e *SilenceError) Error() string {
	return fmt.Sprintf("nothing from the server for %s, %s: the connection is taken as lost", e.Waited.Round(time.Second), e.Why)
}

// SourceBeats is SilenceError.Why of a change stream.
const SourceBeats = "although it sends a message every second when alive"

// Timeout and Temporary make a SilenceError a net.Error.
func (e *SilenceError) Timeout() bool   { return true }
func (e *SilenceError) Temporary() bool { return true }

var _ net.Error = (*SilenceError)(nil)

// ErrNothingSelected is returned when the table mappings select no table.
var ErrNothingSelected = errors.New("the table mappings select no table")

// errCommitTimeReached ends the apply loop at StopAtCommitTime.
var errCommitTimeReached = errors.New("commit time reached")

// ErrorKind is what a change met on the target when it was not applied,
// which says which ErrorBehavior policy applies to it.
type ErrorKind uint8

// The kinds. KindNone is a fault that is not the change's (a lost
// connection, a full disk, a fencing refusal): the replication stops or
// retries as before.
const (
	KindNone       ErrorKind = iota
	KindData                 // the target refused the row (DataErrorPolicy)
	KindTruncation           // a value does not fit its column (DataTruncationErrorPolicy)
	KindConflict             // the row was not as the source had it (ApplyError*Policy)
	KindTable                // the table cannot be written (TableErrorPolicy)
)

func (k ErrorKind) String() string {
	return [...]string{"error", "data error", "data truncation error", "apply conflict", "table error"}[k]
}

// ConflictCode is the SQLSTATE a target raises on purpose for a change
// that found no row, so that a pipelined transaction stops there and is
// applied again row by row (runtime.Applier.Try).
const ConflictCode = "SL002"

// Classify says what kind of fault err is for the change that met it. It
// is the one place that decides, beside Retryable.
func Classify(err error) ErrorKind {
	var re *RowError
	if errors.As(err, &re) {
		return re.Kind
	}
	if err == nil || Retryable(err) {
		return KindNone
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == ConflictCode:
			return KindConflict
		case pe.Code == "22001": // string_data_right_truncation
			return KindTruncation
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"), // data exception, integrity constraint
			pe.Code == "P0001", pe.Code == "P0004": // a trigger's RAISE EXCEPTION, ASSERT
			return KindData
		case strings.HasPrefix(pe.Code, "42"), strings.HasPrefix(pe.Code, "0A"), pe.Code == "25006": // access rule, not supported, read-only
			return KindTable
		}
		return KindNone
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case 1406, 1265: // data too long, data truncated
			return KindTruncation
		case 1048, 1062, 1264, 1292, 1366, 1364, 1367, 1411, 1451, 1452, 1690, 3819, 4025, 1644, 4031:
			// null, duplicate, out of range, bad value, no default, FK,
			// check constraint (MySQL, MariaDB), SIGNAL, ...
			return KindData
		case 1146, 1054, 1142, 1143, 1036, 1064, 1060, 1091, 1050, 1109, 1347:
			// no such table or column, denied, read-only, syntax, ...
			return KindTable
		}
	}
	return KindNone
}

// RowError is a change the target did not apply: it refused it, or found
// its row not as the source had it (a conflict, Err nil). The target
// transaction holds every change before it and is still open.
type RowError struct {
	Change *Change
	Kind   ErrorKind
	// Statement is the statement as the target was sent it, values in
	// place, for awsdms_apply_exceptions.
	Statement string
	Err       error
}

func (e *RowError) Error() string {
	what := "found no row to change"
	if e.Change.Op == OpInsert {
		what = "found its key already on the target"
	}
	if e.Err != nil {
		what = e.Err.Error()
	}
	return fmt.Sprintf("%s of %s: %s (%s)", e.Change.Op, e.table(), what, e.Kind)
}

func (e *RowError) Unwrap() error { return e.Err }

func (e *RowError) table() string {
	if t := e.Change.touched(); len(t) > 0 {
		return t[0].QualifiedSource()
	}
	return "a table"
}

// Exception is a row of awsdms_apply_exceptions: a change that was not
// applied as the source made it, and why.
type Exception struct {
	Table     *Table
	Time      time.Time
	Statement string
	Error     string
}
