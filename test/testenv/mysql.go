package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime/task"
)

// MySQLHost and MySQLPort locate the MariaDB (or MySQL) server;
// SLUICE_TEST_MYSQL_HOST and SLUICE_TEST_MYSQL_PORT override them.
var (
	MySQLHost = env("SLUICE_TEST_MYSQL_HOST", "127.0.0.1")
	MySQLPort = env("SLUICE_TEST_MYSQL_PORT", "3306")
	MySQLUser = env("SLUICE_TEST_MYSQL_USER", "root")
)

// MySQLConnect opens a session on database db ("" for none) that the test
// closes when it ends.
func MySQLConnect(t testing.TB, db string) *client.Conn {
	t.Helper()
	skipShort(t, "MariaDB at "+MySQLHost+":"+MySQLPort)
	conn, err := client.Connect(MySQLHost+":"+MySQLPort, MySQLUser, os.Getenv("SLUICE_TEST_MYSQL_PASSWORD"), db)
	if err != nil {
		t.Fatalf("connect to MariaDB at %s:%s (run `make services` as root to set it up): %v", MySQLHost, MySQLPort, err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Execute("SET NAMES utf8mb4"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// NewMySQLDatabase creates an empty database named after the test, checks
// that the server writes a row-based binlog, and drops the database when
// the test ends.
func NewMySQLDatabase(t testing.TB, label string) string {
	t.Helper()
	admin := MySQLConnect(t, "")
	r, err := admin.Execute("SELECT @@log_bin, @@binlog_format")
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := r.GetInt(0, 0); on != 1 {
		t.Fatalf("MariaDB at %s:%s writes no binlog: run `make services` (as root) first", MySQLHost, MySQLPort)
	}
	name := fmt.Sprintf("sluice_%s_%d_%d", sanitize(label), os.Getpid(), seq.Add(1))
	if _, err := admin.Execute("DROP DATABASE IF EXISTS " + name); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Execute("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := client.Connect(MySQLHost+":"+MySQLPort, MySQLUser, os.Getenv("SLUICE_TEST_MYSQL_PASSWORD"), "")
		if err == nil {
			_, _ = c.Execute("DROP DATABASE IF EXISTS " + name)
			c.Close()
		}
	})
	return name
}

// MySQLExec runs SQL on db and fails the test on error.
func MySQLExec(t testing.TB, db, sql string, args ...any) *mysql.Result {
	t.Helper()
	r, err := MySQLConnect(t, db).Execute(sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", firstLine(sql), err)
	}
	return r
}

// MySQLEndpoint returns a DMS-style endpoint for the local MariaDB.
func MySQLEndpoint() task.Endpoint {
	return task.Endpoint{EngineName: "mariadb", ServerName: MySQLHost, Port: atoi(MySQLPort), Username: MySQLUser, Password: os.Getenv("SLUICE_TEST_MYSQL_PASSWORD")}
}

// MySQLDial connects to database db without a test, for callers that
// expect the server to be away at times.
func MySQLDial(db string) (*client.Conn, error) {
	return client.Connect(MySQLHost+":"+MySQLPort, MySQLUser, os.Getenv("SLUICE_TEST_MYSQL_PASSWORD"), db)
}

// RestartMariaDB shuts the local MariaDB server down cleanly and starts it
// again as test/services does, waiting until it answers. Only for a server
// on this machine, run by this user (make services' setup).
func RestartMariaDB(t testing.TB) {
	t.Helper()
	skipShort(t, "MariaDB at "+MySQLHost+":"+MySQLPort)
	ping := func() bool { return exec.Command("mariadb-admin", "ping", "--silent").Run() == nil }
	start := func() error {
		bin, err := exec.LookPath("mariadbd")
		if err != nil {
			return err
		}
		out, err := exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", bin, "--", "--user=mysql").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for deadline := time.Now().Add(60 * time.Second); !ping(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("MariaDB does not answer 60 s after its start (see /var/log/mysql/error.log)")
			}
		}
		return nil
	}
	// Whatever happens below, the next tests find it running.
	t.Cleanup(func() {
		if !ping() {
			if err := start(); err != nil {
				t.Errorf("start MariaDB again: %v", err)
			}
		}
	})
	if out, err := exec.Command("mariadb-admin", "shutdown").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-admin shutdown: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(60 * time.Second); exec.Command("pgrep", "-x", "mariadbd").Run() == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("mariadbd still runs 60 s after its shutdown")
		}
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
}

// StartMySQLWriter runs the statements step returns for each i on one
// session of database db, in the background, until the returned function
// is called (or the test ends); a failing statement fails the test.
func StartMySQLWriter(t testing.TB, db string, step func(i int) []string) (stop func()) {
	t.Helper()
	conn := MySQLConnect(t, db)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			for _, q := range step(i) {
				if _, err := conn.Execute(q); err != nil {
					t.Errorf("writer: %s: %v", q, err)
					return
				}
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-finished }) }
	t.Cleanup(stop)
	return stop
}
