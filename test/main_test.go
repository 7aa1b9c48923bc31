// Package test holds the end-to-end, fault and type suites that need the
// real PostgreSQL (and later MariaDB and Redis) that test/services prepares.
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// replicatorBin is the sluice-replicator binary built for this run.
var replicatorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	replicatorBin = filepath.Join(dir, "sluice-replicator")
	build := exec.Command("go", "build", "-o", replicatorBin, "../cmd/sluice-replicator")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice-replicator:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
