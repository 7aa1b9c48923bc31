package pgsource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime/pgsource"
	"github.com/sluicedb/sluice/test/testenv"
)

// TestHeartbeatWritesWAL: the heartbeat writes a record to the source
// database's WAL at once and then every interval, which another decoder of
// that database sees (and pgoutput, as a non-transactional message, never
// sends as a change).
func TestHeartbeatWritesWAL(t *testing.T) {
	db := testenv.NewPGDatabase(t, "heartbeat")
	conn := testenv.Connect(t, db)
	testenv.Exec(t, db, `SELECT pg_create_logical_replication_slot('heartbeat_peek', 'test_decoding')`)
	src := pgsource.New(pgsource.Config{ConnString: testenv.PGURL(db), Slot: "sluice_heartbeat_test"})
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	if err := pgsource.HeartbeatEvery(src, ctx, 250*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the heartbeat ended with %v, want its context's end", err)
	}
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_logical_slot_peek_changes('heartbeat_peek', NULL, NULL)
		WHERE data LIKE 'message: transactional: 0 prefix: sluice_heartbeat%' AND data LIKE '%content:sluice_heartbeat_test'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	// One at once and one each 250 ms of 1.1 s: 5, fewer when a busy
	// machine drops ticks, never more.
	if n < 3 || n > 5 {
		t.Fatalf("the heartbeat wrote %d records in 1.1 s at one per 250 ms, want 3 to 5", n)
	}
}
