// Package storetest gives tests a Redis database of their own on the local
// server (each test that uses one owns its number; see the README's
// testing notes): emptied first, so nothing an earlier run left counts.
// In -short mode every test that asks for one is skipped instead, so that
// `go test -short` needs no Redis.
package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/infra/store"
)

// URL is the address of Redis database db on the local server.
func URL(db int) string { return fmt.Sprintf("redis://127.0.0.1:6379/%d", db) }

// Empty empties Redis database db; in -short mode it skips the test.
func Empty(tb testing.TB, db int) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs Redis at 127.0.0.1:6379; skipped in -short mode")
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: db})
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		tb.Fatalf("empty Redis database %d (run `make services`): %v", db, err)
	}
}

// Fresh empties Redis database db and opens the store on it, with the
// production key prefix; it is closed when the test ends.
func Fresh(tb testing.TB, db int) *store.Store {
	tb.Helper()
	Empty(tb, db)
	st, err := store.Open(context.Background(), URL(db), "sluice")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
