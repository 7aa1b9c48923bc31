package mysqlsource

import (
	"context"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluicedb/sluice/runtime"
)

// positionAt finds where the first transaction committed at or after at
// begins (CdcStartTime), from the binlog's event timestamps: the last file
// that began before the time is scanned from its start. Binlog timestamps
// have whole seconds, so the time is compared at that grain.
func (s *Source) positionAt(ctx context.Context, conn *client.Conn, at time.Time) (runtime.Position, error) {
	end, err := masterStatus(conn)
	if err != nil {
		return nil, err
	}
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("list the source's binlogs (needs the REPLICATION CLIENT privilege): %w", err)
	}
	var files []string
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		files = append(files, name)
	}
	if len(files) == 0 {
		return end, nil
	}
	target := at.Truncate(time.Second)
	if at.After(target) {
		target = target.Add(time.Second)
	}
	start := 0
	for i := len(files) - 1; i >= 0; i-- {
		began, err := s.scan(ctx, runtime.BinlogPos{File: files[i], Pos: 4}, end, func(*replication.BinlogEvent) bool { return true })
		if err != nil {
			return nil, err
		}
		if began == nil {
			continue
		}
		ts := time.Unix(int64(began.Header.Timestamp), 0)
		if !ts.After(target) {
			start = i
			break
		}
		if i == 0 {
			return nil, fmt.Errorf("CdcStartTime %s is before the oldest binlog the source keeps (%s begins at %s): the changes before it cannot be read; use a later time or a full-load-and-cdc replication", at.UTC().Format(time.RFC3339), files[0], ts.UTC().Format(time.RFC3339))
		}
	}
	var found *runtime.BinlogPos
	file := files[start]
	_, err = s.scan(ctx, runtime.BinlogPos{File: file, Pos: 4}, end, func(ev *replication.BinlogEvent) bool {
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
			return false
		case *replication.MariadbGTIDEvent, *replication.GTIDEvent, *replication.QueryEvent:
		default:
			return false
		}
		if time.Unix(int64(ev.Header.Timestamp), 0).Before(target) {
			return false
		}
		found = &runtime.BinlogPos{File: file, Pos: ev.Header.LogPos - ev.Header.EventSize}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return end, nil // nothing committed since: start at the end
	}
	return *found, nil
}

// scan reads the binlog from pos until stop says so or the reading reaches
// end, and returns the event stop accepted (nil if none).
func (s *Source) scan(ctx context.Context, pos, end runtime.BinlogPos, stop func(*replication.BinlogEvent) bool) (*replication.BinlogEvent, error) {
	syncer := s.syncer()
	defer syncer.Close()
	streamer, err := syncer.StartSync(mysql.Position{Name: pos.File, Pos: pos.Pos})
	if err != nil {
		return nil, fmt.Errorf("read the binlog at %s: %w", pos, err)
	}
	file := pos.File
	for {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := streamer.GetEvent(gctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, nil // nothing more within the wait: the end
		}
		if re, ok := ev.Event.(*replication.RotateEvent); ok && ev.Header.Timestamp == 0 {
			// The server's announcement of where it starts, not an event.
			file = string(re.NextLogName)
			continue
		}
		if _, ok := ev.Event.(*replication.FormatDescriptionEvent); ok {
			if stop(ev) {
				return ev, nil
			}
			continue
		}
		if stop(ev) {
			return ev, nil
		}
		if re, ok := ev.Event.(*replication.RotateEvent); ok {
			file = string(re.NextLogName)
		}
		here := runtime.BinlogPos{File: file, Pos: ev.Header.LogPos}
		if here.Compare(end) >= 0 {
			return nil, nil
		}
	}
}
