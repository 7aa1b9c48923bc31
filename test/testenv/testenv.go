// Package testenv gives tests real, throwaway databases on the local
// services that test/services configures: a fresh PostgreSQL database per
// test, dropped (with its replication slots) when the test ends. In -short
// mode every helper that would reach a service skips the test instead, so
// that `go test -short` needs none.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGHost and PGPort locate the PostgreSQL server; SLUICE_TEST_PG_HOST and
// SLUICE_TEST_PG_PORT override them.
var (
	PGHost = env("SLUICE_TEST_PG_HOST", "127.0.0.1")
	PGPort = env("SLUICE_TEST_PG_PORT", "5432")
	PGUser = env("SLUICE_TEST_PG_USER", "postgres")
)

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var seq atomic.Int64

// skipShort skips the test in -short mode, which promises a run without
// services: each helper that reaches one calls it before anything else.
func skipShort(t testing.TB, service string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; skipped in -short mode", service)
	}
}

// PGURL returns the connection URL of database db.
func PGURL(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%s/%s?sslmode=disable", PGUser, PGHost, PGPort, db)
}

// NewPGDatabase creates an empty database named after the test and drops it,
// and any replication slot on it, when the test ends. It fails the test with
// the fix when PostgreSQL is not reachable or not set up for logical decoding.
func NewPGDatabase(t testing.TB, label string) string {
	t.Helper()
	ctx := context.Background()
	admin := Connect(t, "postgres")
	var level string
	if err := admin.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("PostgreSQL at %s:%s has wal_level=%s: run `make services` (as root) first", PGHost, PGPort, level)
	}
	name := fmt.Sprintf("sluice_%s_%d_%d", sanitize(label), os.Getpid(), seq.Add(1))
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DropPGDatabase(t, name) })
	return name
}

// DropPGDatabase drops a database and the slots that live in it.
func DropPGDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := Connect(t, "postgres")
	for i := 0; i < 20; i++ {
		_, err := admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err == nil {
			_, err = admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		}
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Logf("drop database %s: %v", name, err)
	}
}

// Connect opens a session on db, closed when the test ends.
func Connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	skipShort(t, "PostgreSQL at "+PGHost+":"+PGPort)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PGURL(db))
	if err != nil {
		t.Fatalf("connect to PostgreSQL %s (run `make services` as root to set it up): %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL on db and fails the test on error.
func Exec(t testing.TB, db string, sql string, args ...any) {
	t.Helper()
	conn := Connect(t, db)
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", firstLine(sql), err)
	}
}

// TableDigest returns the row count and a digest of a table's rows, ordered
// by their text form, so two tables compare as row sets (duplicates count).
func TableDigest(t testing.TB, db, table string) (int64, string) {
	t.Helper()
	skipShort(t, "PostgreSQL at "+PGHost+":"+PGPort)
	conn, err := pgx.Connect(context.Background(), PGURL(db))
	if err != nil {
		t.Fatalf("connect to %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	n, d, err := tableDigest(conn, table)
	if err != nil {
		t.Fatalf("digest %s in %s: %v", table, db, err)
	}
	return n, d
}

func tableDigest(conn *pgx.Conn, table string) (int64, string, error) {
	var n int64
	var digest *string
	err := conn.QueryRow(context.Background(),
		fmt.Sprintf("SELECT count(*), md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM %s x", table)).Scan(&n, &digest)
	if err != nil || digest == nil {
		return n, "", err
	}
	return n, *digest, nil
}

// RequireEqualTables fails the test unless each table has the same rows in
// both databases.
func RequireEqualTables(t testing.TB, srcDB, dstDB string, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		sn, sd := TableDigest(t, srcDB, tb)
		dn, dd := TableDigest(t, dstDB, tb)
		if sn != dn || sd != dd {
			t.Errorf("table %s differs: source %d rows (%s), target %d rows (%s)", tb, sn, sd, dn, dd)
		}
	}
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 20 {
		b = b[:20]
	}
	return string(b)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

// StartWriter changes database db from one session until the returned
// stop is called (stop waits for it): step runs again and again with a
// growing i, and its first error fails the test.
func StartWriter(t testing.TB, db string, step func(ctx context.Context, conn *pgx.Conn, i int) error) (stop func()) {
	t.Helper()
	conn := Connect(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := step(ctx, conn, i); err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
