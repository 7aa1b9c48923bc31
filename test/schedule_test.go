package test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/sluicedb/sluice/infra/mototest"
	"github.com/sluicedb/sluice/test/testenv"
)

// sluiceCLI runs bin/sluice with the API tests' Redis.
func sluiceCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(cmd.Environ(), fmt.Sprintf("SLUICE_REDIS_URL=redis://127.0.0.1:6379/%d", testRedisDB))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestLocalSchedules: `sluice schedule create` stores schedules that
// `sluice serve` fires: one starts a replication, another stops it, at the
// times their at() expressions say (in a time zone, as EventBridge
// Scheduler takes them).
func TestLocalSchedules(t *testing.T) {
	s := startServer(t)
	c := s.client(testSecret)
	f := newFixture(t, c, "sched", "full-load-and-cdc")
	testenv.Exec(t, f.src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)`)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) (string, time.Time) {
		when := time.Now().Add(d).Truncate(time.Second)
		return "at(" + when.In(paris).Format("2006-01-02T15:04:05") + ")", when
	}
	startExpr, startAt := at(3 * time.Second)
	if out, err := sluiceCLI(t, "schedule", "create", "-name", "nightly-start", "-expression", startExpr, "-timezone", "Europe/Paris",
		"-action", "start", "-replication-config-arn", f.configArn); err != nil {
		t.Fatalf("schedule create: %v\n%s", err, out)
	}
	stopExpr, stopAt := at(12 * time.Second)
	if out, err := sluiceCLI(t, "schedule", "create", "-name", "nightly-stop", "-expression", stopExpr, "-timezone", "Europe/Paris",
		"-action", "stop", "-replication-config-arn", f.configArn); err != nil {
		t.Fatalf("schedule create: %v\n%s", err, out)
	}
	out, err := sluiceCLI(t, "schedule", "list")
	if err != nil || !strings.Contains(out, "nightly-start") || !strings.Contains(out, "nightly-stop") || !strings.Contains(out, startAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("schedule list: %v\n%s", err, out)
	}
	if st := aws.ToString(f.describe(t, c).Status); st != "created" {
		t.Fatalf("status %s before the schedule, want created", st)
	}
	f.waitFor(t, c, "running after the scheduled start", 40*time.Second, func(r types.Replication) bool { return aws.ToString(r.Status) == "running" })
	if late := time.Since(startAt); late < 0 {
		t.Fatalf("started %s before the schedule's time", -late)
	}
	r := f.waitFor(t, c, "stopped after the scheduled stop", 40*time.Second, func(r types.Replication) bool { return aws.ToString(r.Status) == "stopped" })
	if r.ReplicationLastStopTime != nil && r.ReplicationLastStopTime.Before(stopAt) {
		t.Fatalf("stopped at %s, before the schedule's %s", r.ReplicationLastStopTime, stopAt)
	}
	testenv.RequireEqualTables(t, f.src, f.dst, "items")
	// Fired at() schedules have no next run; deleting works once.
	out, _ = sluiceCLI(t, "schedule", "list")
	if strings.Contains(out, startAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("a fired at() schedule still shows its run:\n%s", out)
	}
	if out, err := sluiceCLI(t, "schedule", "delete", "-name", "nightly-start"); err != nil {
		t.Fatalf("schedule delete: %v\n%s", err, out)
	}
	if out, err := sluiceCLI(t, "schedule", "delete", "-name", "nightly-start"); err == nil || !strings.Contains(out, "no schedule named nightly-start") {
		t.Fatalf("deleting it again: %v\n%s", err, out)
	}
	for _, bad := range [][]string{
		{"-name", "x", "-expression", "cron(0 12 * * * *)", "-action", "start", "-replication-config-arn", f.configArn},
		{"-name", "x", "-expression", "rate(1 minutes)", "-action", "start", "-replication-config-arn", f.configArn},
		{"-name", "x", "-expression", "rate(5 minutes)", "-action", "pause", "-replication-config-arn", f.configArn},
		{"-name", "bad/name", "-expression", "rate(5 minutes)", "-action", "stop", "-replication-config-arn", f.configArn},
	} {
		if out, err := sluiceCLI(t, append([]string{"schedule", "create"}, bad...)...); err == nil {
			t.Errorf("schedule create %q was accepted:\n%s", bad, out)
		}
	}
}

// TestAWSSchedulesCLI: with SLUICE_SCHEDULER=aws, `sluice schedule` keeps
// the schedules in EventBridge Scheduler (moto_server here), in the group
// it creates, targeting the schedule function.
func TestAWSSchedulesCLI(t *testing.T) {
	mototest.Start(t)
	env := []string{"SLUICE_SCHEDULER=aws", "SLUICE_SCHEDULE_GROUP=sluice-cli-test",
		"SLUICE_SCHEDULE_TARGET_ARN=arn:aws:lambda:us-east-1:000000000000:function:sluice-schedule",
		"SLUICE_SCHEDULE_ROLE_ARN=arn:aws:iam::000000000000:role/sluice-scheduler"}
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(sluiceBin, append([]string{"schedule"}, args...)...)
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cfg := "arn:aws:dms:us-east-1:000000000000:replication-config:AWSCLI"
	if out, err := cli("create", "-name", "night-stop", "-expression", "cron(0 22 ? * MON-FRI *)", "-timezone", "Europe/Paris",
		"-action", "stop", "-replication-config-arn", cfg); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	out, err := cli("list")
	if err != nil || !strings.Contains(out, "night-stop") || !strings.Contains(out, "cron(0 22 ? * MON-FRI *)") || !strings.Contains(out, cfg) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := cli("create", "-name", "night-stop", "-expression", "rate(1 hour)", "-action", "stop", "-replication-config-arn", cfg); err == nil {
		t.Fatalf("a second schedule of the same name was accepted:\n%s", out)
	}
	if out, err := cli("delete", "-name", "night-stop"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if out, _ := cli("list"); strings.Contains(out, "night-stop") {
		t.Fatalf("deleted schedule still listed:\n%s", out)
	}
}
