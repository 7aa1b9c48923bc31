// Package mototest runs one moto_server per test binary to stand in for
// AWS (ECS, Secrets Manager, EventBridge Scheduler) in tests. Call Start
// from each test that needs it, and Stop from TestMain.
package mototest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

const motoStartTimeout = 30 * time.Second

// moto is the one moto_server of this test binary: started by the first test
// that needs it, stopped by TestMain.
var moto struct {
	once   sync.Once
	url    string
	err    error
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	out    bytes.Buffer  // its output; read only after exited is closed
}

// Start returns the URL of a running moto_server and points the AWS SDK
// at it for the rest of the test: endpoint, region us-east-1 and static
// credentials, with the developer's ~/.aws out of the way. A missing
// moto_server fails the test rather than skipping it, so a machine without
// it cannot pass silently; in -short mode the test is skipped before
// moto_server is looked for.
func Start(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs moto_server to stand in for AWS; skipped in -short mode")
	}
	moto.once.Do(func() { moto.url, moto.err = runMoto() })
	if moto.err != nil {
		tb.Fatal(moto.err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            moto.url,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(tb.TempDir(), "absent"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(tb.TempDir(), "absent"),
	} {
		tb.Setenv(k, v)
	}
	return moto.url
}

func runMoto() (string, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return "", errors.New("moto_server is not installed, and these tests need it to stand in for AWS: pip install 'moto[server]'")
	}
	// Another process may take the port between Close and moto's bind;
	// moto then exits and the error below shows why.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for moto_server: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	moto.cmd = exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	moto.cmd.Stdout, moto.cmd.Stderr = &moto.out, &moto.out
	if err := moto.cmd.Start(); err != nil {
		return "", fmt.Errorf("start moto_server: %w", err)
	}
	moto.exited = make(chan struct{})
	go func() { _ = moto.cmd.Wait(); close(moto.exited) }()

	url := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.After(motoStartTimeout)
	for {
		if resp, err := client.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url, nil
		}
		select {
		case <-moto.exited:
			return "", fmt.Errorf("moto_server exited before answering on %s:\n%s", url, moto.out.String())
		case <-deadline:
			Stop()
			return "", fmt.Errorf("moto_server did not answer on %s within %s:\n%s", url, motoStartTimeout, moto.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop kills moto_server if it was started and waits until it is gone.
func Stop() {
	if moto.exited == nil {
		return
	}
	_ = moto.cmd.Process.Kill()
	<-moto.exited
}
