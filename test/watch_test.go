package test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/test/testenv"
)

// runWatch runs `sluice watch` against s with the client's credentials in
// the environment, and returns its output and exit error.
func runWatch(t *testing.T, s *server, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append([]string{"watch", "-endpoint", s.url, "-interval", "200ms"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testKeyID, "AWS_SECRET_ACCESS_KEY="+testSecret, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestWatch: the live view follows a replication through its full load to
// running, shows each table's progress and the changes, and exits with an
// error that says why when the replication cannot be read or fails.
func TestWatch(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	ctx := context.Background()
	f := newFixture(t, c, "watch", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	testenv.Exec(t, f.src, `INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 12345) g`)
	testenv.Exec(t, f.src, `CREATE TABLE notes (id int PRIMARY KEY, body text)`)
	testenv.Exec(t, f.src, `ANALYZE`)

	out, err := runWatch(t, s, "-until", "running", "-timeout", "500ms", f.configID)
	if err == nil || !strings.Contains(out, "was not running before -timeout") {
		t.Fatalf("watch of a replication that was never started should time out with a reason; err %v, output:\n%s", err, out)
	}
	if !strings.Contains(out, "watch-cfg created") {
		t.Fatalf("watch should show the created status; output:\n%s", out)
	}

	if _, err := c.StartReplication(ctx, &dms.StartReplicationInput{ReplicationConfigArn: aws.String(f.configArn), StartReplicationType: aws.String("start-replication")}); err != nil {
		t.Fatalf("StartReplication: %v", err)
	}
	out, err = runWatch(t, s, "-until", "loaded", "-timeout", "2m", f.configArn)
	if err != nil {
		t.Fatalf("watch -until loaded: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`full load\s+\[#{20}\] 100%\s+2 loaded, 0 loading, 0 queued, 0 errored`),
		regexp.MustCompile(`public\.items\s+Table completed\s+\[#{20}\] 100%\s+12,345\s+0\s+0\s+0`),
		regexp.MustCompile(`public\.notes\s+Table completed\s+\[#{20}\] 100%\s+0\s`),
		regexp.MustCompile(`(?m)^lag\s+\d+\.\d s$`),
		regexp.MustCompile(`watch-cfg  RUNNING  \(full-load-and-cdc\)  up \d+s  1 capacity unit`),
	} {
		if !want.MatchString(out) {
			t.Errorf("watch output lacks %s:\n%s", want, out)
		}
	}

	// Changes show in the table's counters.
	testenv.Exec(t, f.src, `UPDATE items SET name = name || '!' WHERE id <= 250`)
	testenv.Exec(t, f.src, `INSERT INTO notes SELECT g, 'note' FROM generate_series(1, 40) g`)
	f.waitFor(t, c, "the changes counted", time.Minute, func(types.Replication) bool {
		return apiTableStats(t, c, f.configArn, "items").Updates == 250 && apiTableStats(t, c, f.configArn, "notes").Inserts == 40
	})
	out, err = runWatch(t, s, "-until", "running", f.configID)
	if err != nil {
		t.Fatalf("watch -until running: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`public\.items\s+Table completed\s+\[#{20}\] 100%\s+12,345\s+0\s+250\s+0`).MatchString(out) ||
		!regexp.MustCompile(`public\.notes\s+Table completed\s+\[#{20}\] 100%\s+0\s+40\s+0\s+0`).MatchString(out) {
		t.Fatalf("watch does not show the changes:\n%s", out)
	}

	if _, err := c.StopReplication(ctx, &dms.StopReplicationInput{ReplicationConfigArn: aws.String(f.configArn)}); err != nil {
		t.Fatalf("StopReplication: %v", err)
	}
	out, err = runWatch(t, s, "-until", "stopped", "-timeout", "1m", f.configID)
	if err != nil || !strings.Contains(out, "Stop Reason NORMAL") || !strings.Contains(out, "checkpoint  checkpoint:") {
		t.Fatalf("watch -until stopped: %v\n%s", err, out)
	}

	out, err = runWatch(t, s, "no-such-replication")
	if err == nil || !strings.Contains(out, "ResourceNotFoundFault") {
		t.Fatalf("watch of an unknown replication: err %v, output:\n%s", err, out)
	}
	cmd := exec.Command(sluiceBin, "watch", "-endpoint", s.url, f.configID)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testKeyID, "AWS_SECRET_ACCESS_KEY=wrong", "AWS_REGION=us-east-1")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "AccessDeniedFault") {
		t.Fatalf("watch with a wrong secret: err %v, output:\n%s", err, b)
	}
	testenv.Exec(t, f.src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`)
}
