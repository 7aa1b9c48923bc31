// Package test holds the end-to-end, fault and type suites that need the
// real PostgreSQL (and later MariaDB and Redis) that test/services prepares.
package test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sluicedb/sluice/infra/mototest"
)

// replicatorBin and sluiceBin are the binaries built for this run.
var replicatorBin, sluiceBin string

func TestMain(m *testing.M) {
	// Every test here needs the services, moto_server or binaries built
	// from ./cmd, and a few reach them directly rather than through
	// testenv or storetest (TestTelemetryAPI opens Redis, TestLambdaInitError
	// builds cmd/lambda-api), so -short skips the package before the build.
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipped in -short mode: these end-to-end suites need PostgreSQL, MariaDB, Redis, moto_server and binaries built from ./cmd (make test runs them)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sluice-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	replicatorBin, sluiceBin = filepath.Join(dir, "sluice-replicator"), filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/sluice-replicator", "../cmd/sluice")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	mototest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}
