package mysqlsource

import (
	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluicedb/sluice/runtime"
)

// BinlogPosition returns the server's current binlog position (SHOW MASTER
// STATUS, or SHOW BINARY LOG STATUS on MySQL 8.4 and later), for callers
// outside the replicator that measure the source (the capacity analysis).
func BinlogPosition(conn *client.Conn) (runtime.BinlogPos, error) { return masterStatus(conn) }
