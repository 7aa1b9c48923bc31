package runtime

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Position is a point in a source's change stream. Positions of one source are
// totally ordered; the replicator only ever moves them forward.
type Position interface {
	// Compare returns -1, 0 or +1 as the receiver is before, at or after other.
	// Comparing positions of different kinds is a programming error and panics.
	Compare(other Position) int
	// String returns the native form users know (an LSN such as 16/B374D848).
	String() string
	// Kind names the position's family ("pg-lsn", ...); it prefixes checkpoints.
	Kind() string
}

// LSN is a PostgreSQL WAL location.
type LSN uint64

// ParseLSN reads the native form 16/B374D848.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("%q is not a PostgreSQL LSN: want two hex numbers separated by '/', like 16/B374D848", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a PostgreSQL LSN: want two hex numbers separated by '/', like 16/B374D848", s)
	}
	return LSN(h<<32 | l), nil
}

// Compare implements Position.
func (l LSN) Compare(other Position) int {
	o := other.(LSN)
	switch {
	case l < o:
		return -1
	case l > o:
		return 1
	}
	return 0
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// Kind implements Position.
func (LSN) Kind() string { return "pg-lsn" }

// BinlogPos is a MySQL or MariaDB binary log coordinate: a file of the
// server's binlog sequence and a byte offset in it.
type BinlogPos struct {
	File string
	Pos  uint32
}

// ParseBinlogPos reads the native form mysql-bin.000042:1234.
func ParseBinlogPos(s string) (BinlogPos, error) {
	file, pos, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(pos, 10, 32)
	if !ok || file == "" || err != nil || binlogSeq(file) < 0 {
		return BinlogPos{}, fmt.Errorf("%q is not a binlog position: want file:offset, like mysql-bin.000042:1234, as SHOW MASTER STATUS shows it", s)
	}
	return BinlogPos{File: file, Pos: uint32(n)}, nil
}

// binlogSeq is the sequence number a binlog file name ends with, or -1.
func binlogSeq(file string) int64 {
	i := strings.LastIndexByte(file, '.')
	if i < 0 {
		return -1
	}
	n, err := strconv.ParseInt(file[i+1:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// Compare implements Position. Files are ordered by their sequence number,
// which keeps growing past the six digits the names start with.
func (b BinlogPos) Compare(other Position) int {
	o := other.(BinlogPos)
	if a, c := binlogSeq(b.File), binlogSeq(o.File); a != c {
		if a < c {
			return -1
		}
		return 1
	}
	switch {
	case b.Pos < o.Pos:
		return -1
	case b.Pos > o.Pos:
		return 1
	}
	return 0
}

func (b BinlogPos) String() string { return fmt.Sprintf("%s:%d", b.File, b.Pos) }

// Kind implements Position.
func (BinlogPos) Kind() string { return "mysql-binlog" }

// GTIDSet is a MySQL GTID set (3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77)
// or a MariaDB GTID position (0-1-100, one per replication domain): where a
// change stream starts when given as CdcStartPosition. The stream's own
// checkpoints are binlog positions.
type GTIDSet struct {
	MariaDB bool
	set     mysql.GTIDSet
}

var mariadbGTID = regexp.MustCompile(`^\d+-\d+-\d+(,\d+-\d+-\d+)*$`)

// ParseGTIDSet reads either form; the flavor follows from the syntax.
func ParseGTIDSet(s string) (GTIDSet, error) {
	flavor := mysql.MySQLFlavor
	if mariadbGTID.MatchString(s) {
		flavor = mysql.MariaDBFlavor
	}
	set, err := mysql.ParseGTIDSet(flavor, s)
	if err != nil || set.String() == "" {
		return GTIDSet{}, fmt.Errorf("%q is not a GTID position: want a MariaDB GTID such as 0-1-100 (SELECT @@gtid_binlog_pos) or a MySQL GTID set such as 3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77 (SELECT @@gtid_executed)", s)
	}
	return GTIDSet{MariaDB: flavor == mysql.MariaDBFlavor, set: set}, nil
}

// Set is the GTID set in go-mysql's form, for the binlog dump.
func (g GTIDSet) Set() mysql.GTIDSet { return g.set }

// Compare implements Position: a set that holds another is after it.
func (g GTIDSet) Compare(other Position) int {
	o := other.(GTIDSet)
	switch {
	case g.set.Equal(o.set):
		return 0
	case o.set.Contain(g.set):
		return -1
	case g.set.Contain(o.set):
		return 1
	}
	// Neither holds the other (different histories): order by text, so
	// the order is at least total.
	return strings.Compare(g.String(), o.String())
}

func (g GTIDSet) String() string { return g.set.String() }

// Kind implements Position.
func (GTIDSet) Kind() string { return "mysql-gtid" }

const checkpointPrefix = "checkpoint:"

// Checkpoint renders p as the RecoveryCheckpoint string that StartReplication
// accepts back as CdcStartPosition.
func Checkpoint(p Position) string {
	return checkpointPrefix + p.Kind() + ":" + p.String()
}

// ParsePosition reads a checkpoint string or a native position.
func ParsePosition(s string) (Position, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, checkpointPrefix); ok {
		kind, native, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("checkpoint %q is malformed: want checkpoint:<kind>:<position> as RecoveryCheckpoint shows it", s)
		}
		switch kind {
		case LSN(0).Kind():
			return ParseLSN(native)
		case BinlogPos{}.Kind():
			return ParseBinlogPos(native)
		case GTIDSet{}.Kind():
			return ParseGTIDSet(native)
		}
		return nil, fmt.Errorf("checkpoint %q has unknown kind %q", s, kind)
	}
	if strings.Contains(s, "/") {
		return ParseLSN(s)
	}
	if mariadbGTID.MatchString(s) || strings.Count(s, "-") >= 4 {
		return ParseGTIDSet(s)
	}
	if strings.Contains(s, ":") {
		return ParseBinlogPos(s)
	}
	return nil, fmt.Errorf("position %q is not recognized: use a RecoveryCheckpoint (checkpoint:...), a PostgreSQL LSN such as 16/B374D848, a binlog position such as mysql-bin.000042:1234, or a GTID (0-1-100, or a MySQL GTID set)", s)
}

// ErrPositionBackwards is returned when something tries to move a position back.
var ErrPositionBackwards = errors.New("position moved backwards")

// Progress holds a position that only moves forward. It is safe for concurrent use.
type Progress struct {
	mu  sync.Mutex
	pos Position
}

// Advance moves the progress to p. Moving to an earlier position is refused with
// ErrPositionBackwards and leaves the progress unchanged.
func (pr *Progress) Advance(p Position) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.pos != nil && p.Compare(pr.pos) < 0 {
		return fmt.Errorf("%w: from %s to %s", ErrPositionBackwards, pr.pos, p)
	}
	pr.pos = p
	return nil
}

// Get returns the current position, or nil before the first Advance.
func (pr *Progress) Get() Position {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.pos
}

// StopPosition is where a CDC replication stops (CdcStopPosition): at a
// time on the server running it, or at the first source commit after a time.
type StopPosition struct {
	Kind string // "server_time" or "commit_time"
	At   time.Time
}

// ParseStopPosition reads a CdcStopPosition as DMS writes it:
// server_time:2018-02-09T12:12:12 or commit_time:2018-02-09T12:12:12 (UTC).
func ParseStopPosition(v string) (StopPosition, error) {
	kind, ts, ok := strings.Cut(v, ":")
	if !ok || (kind != "server_time" && kind != "commit_time") {
		return StopPosition{}, fmt.Errorf("%q is not a stop position: use server_time:2006-01-02T15:04:05 or commit_time:2006-01-02T15:04:05 (UTC)", v)
	}
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339Nano} {
		if at, err := time.Parse(layout, ts); err == nil {
			return StopPosition{Kind: kind, At: at.UTC()}, nil
		}
	}
	return StopPosition{}, fmt.Errorf("%q is not a time like 2006-01-02T15:04:05 (UTC)", ts)
}
