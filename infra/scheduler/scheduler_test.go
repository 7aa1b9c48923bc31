package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"

	"github.com/sluicedb/sluice/infra/mototest"
)

const (
	targetArn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-schedule"
	roleArn   = "arn:aws:iam::123456789012:role/sluice-scheduler"
	startArn  = `{"action":"start","replicationConfigArn":"arn:aws:dms:us-east-1:123456789012:replication-config:ABC","startReplicationType":"resume-processing"}`
	stopArn   = `{"action":"stop","replicationConfigArn":"arn:aws:dms:us-east-1:123456789012:replication-config:ABC"}`
)

// newClient starts moto and returns a Client for a group of its own, so
// tests sharing the server do not see each other's schedules.
func newClient(t *testing.T) *Client {
	t.Helper()
	mototest.Start(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("sluice-test-%d", time.Now().UnixNano())
	return New(scheduler.NewFromConfig(cfg), group, targetArn, roleArn)
}

func TestCreateListDelete(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	// Three schedules and pages of two: List must follow NextToken.
	c.pageSize = 2
	if err := c.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	want := []Schedule{
		{Name: "at-once", Expression: "at(2030-01-01T09:00:00)", Timezone: "America/New_York", Payload: []byte(startArn), State: "ENABLED"},
		{Name: "nightly-stop", Expression: "cron(0 22 ? * MON-FRI *)", Timezone: "Europe/Paris", Payload: []byte(stopArn), State: "DISABLED", Description: "weeknights"},
		{Name: "rate.5_min", Expression: "rate(5 minutes)", Payload: []byte(startArn)},
	}
	for _, s := range want {
		if err := c.Create(ctx, s); err != nil {
			t.Fatalf("Create %s: %v", s.Name, err)
		}
	}
	// The premise of pageSize: the server does split three into pages.
	page, err := c.api.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(c.group), MaxResults: aws.Int32(c.pageSize)})
	if err != nil || page.NextToken == nil {
		t.Fatalf("ListSchedules of %d = %v; want a NextToken", c.pageSize, err)
	}

	// EnsureGroup again must keep the group's schedules (moto's
	// CreateScheduleGroup would drop them).
	if err := c.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	// A schedule of another group must not be listed.
	other := New(c.api, c.group+"-other", targetArn, roleArn)
	if err := other.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Create(ctx, Schedule{Name: "elsewhere", Expression: "rate(1 hour)", Payload: []byte(stopArn)}); err != nil {
		t.Fatal(err)
	}

	got, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want[2].State = "ENABLED" // "" creates an enabled schedule
	if len(got) != len(want) {
		t.Fatalf("List = %d schedules %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		// Given no timezone, moto reports "UTC"; AWS may leave it out.
		if w.Timezone == "" && g.Timezone == "UTC" {
			g.Timezone = ""
		}
		if g.Name != w.Name || g.Expression != w.Expression || g.Timezone != w.Timezone ||
			string(g.Payload) != string(w.Payload) || g.State != w.State || g.Description != w.Description {
			t.Errorf("List[%d] = %+v\nwant %+v", i, g, w)
		}
	}

	// What Create sent that Schedule does not carry.
	for _, s := range want {
		out, err := c.api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(s.Name), GroupName: aws.String(c.group)})
		if err != nil {
			t.Fatal(err)
		}
		if out.FlexibleTimeWindow == nil || out.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff {
			t.Errorf("%s: FlexibleTimeWindow = %+v, want OFF", s.Name, out.FlexibleTimeWindow)
		}
		if aws.ToString(out.Target.Arn) != targetArn || aws.ToString(out.Target.RoleArn) != roleArn {
			t.Errorf("%s: target %s as %s, want %s as %s", s.Name, aws.ToString(out.Target.Arn), aws.ToString(out.Target.RoleArn), targetArn, roleArn)
		}
		wantAfter := types.ActionAfterCompletion("")
		if isAt(s.Expression) {
			wantAfter = types.ActionAfterCompletionDelete
		}
		if out.ActionAfterCompletion != wantAfter {
			t.Errorf("%s: ActionAfterCompletion = %q, want %q", s.Name, out.ActionAfterCompletion, wantAfter)
		}
	}

	// A taken name; the first schedule must survive.
	err = c.Create(ctx, Schedule{Name: "nightly-stop", Expression: "rate(1 day)", Payload: []byte(startArn)})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `"nightly-stop"`) {
		t.Fatalf("Create duplicate = %v, want ErrExists naming the schedule", err)
	}

	if err := c.Delete(ctx, "nightly-stop"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.List(ctx); err != nil || len(got) != 2 || got[0].Name != "at-once" || got[1].Name != "rate.5_min" {
		t.Fatalf("List after Delete = %+v, %v; want at-once and rate.5_min", got, err)
	}
	err = c.Delete(ctx, "nightly-stop")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nightly-stop"`) {
		t.Fatalf("Delete again = %v, want ErrNotFound naming the schedule", err)
	}
}

// `sluice schedule list` before any create: no group yet, no schedules.
func TestListMissingGroup(t *testing.T) {
	c := newClient(t)
	got, err := c.List(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("List = %+v, %v; want none", got, err)
	}
}

func TestDeleteMissingGroup(t *testing.T) {
	c := newClient(t)
	if err := c.Delete(context.Background(), "nightly"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete = %v, want ErrNotFound", err)
	}
}

// A refused schedule must not reach AWS: nothing is created.
func TestCreateRejectsLocally(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	if err := c.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Schedule{
		{Name: "bad name", Expression: "rate(1 hour)", Payload: []byte(startArn)},
		{Name: "bad-payload", Expression: "rate(1 hour)", Payload: []byte(`{"action":"sweep"}`)},
	} {
		if err := c.Create(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create %q = %v, want ErrInvalid", s.Name, err)
		}
	}
	if err := c.Delete(ctx, "a/b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Delete a/b = %v, want ErrInvalid", err)
	}
	if got, err := c.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List = %+v, %v; want none", got, err)
	}
}

func TestValidate(t *testing.T) {
	ok := Schedule{Name: "nightly", Expression: "cron(0 22 * * ? *)", Payload: []byte(stopArn)}
	with := func(f func(*Schedule)) Schedule { s := ok; f(&s); return s }
	tests := []struct {
		name    string
		s       Schedule
		wantErr string // "" when valid
	}{
		{"valid cron", ok, ""},
		{"valid at", with(func(s *Schedule) { s.Expression = "at(2030-01-01T09:00:00)" }), ""},
		{"valid rate, disabled", with(func(s *Schedule) { s.Expression = "rate(1 hour)"; s.State = "DISABLED" }), ""},
		// EventBridge's limits: 64 characters of [0-9a-zA-Z-_.].
		{"name of 64", with(func(s *Schedule) { s.Name = strings.Repeat("a", 64) }), ""},
		{"name of 65", with(func(s *Schedule) { s.Name = strings.Repeat("a", 65) }), "1 to 64 letters"},
		{"empty name", with(func(s *Schedule) { s.Name = "" }), "1 to 64 letters"},
		{"name with space", with(func(s *Schedule) { s.Name = "night ly" }), `"night ly"`},
		// A slash would change the request's URL path.
		{"name with slash", with(func(s *Schedule) { s.Name = "a/b" }), "1 to 64 letters"},
		{"name with non-ASCII", with(func(s *Schedule) { s.Name = "nächtlich" }), "1 to 64 letters"},
		// The service parses expressions; only the three forms pass here.
		{"bare cron fields", with(func(s *Schedule) { s.Expression = "0 22 * * ? *" }), "is not at("},
		{"empty at", with(func(s *Schedule) { s.Expression = "at()" }), "is not at("},
		{"unclosed rate", with(func(s *Schedule) { s.Expression = "rate(1 hour" }), "is not at("},
		{"lowercase state", with(func(s *Schedule) { s.State = "enabled" }), "ENABLED or DISABLED"},
		{"payload not JSON", with(func(s *Schedule) { s.Payload = []byte("start") }), "not a JSON object"},
		{"payload empty", with(func(s *Schedule) { s.Payload = nil }), "not a JSON object"},
		{"payload null", with(func(s *Schedule) { s.Payload = []byte("null") }), "not a JSON object"},
		{"payload array", with(func(s *Schedule) { s.Payload = []byte(`[{"action":"start"}]`) }), "not a JSON object"},
		{"no action", with(func(s *Schedule) { s.Payload = []byte(`{"replicationConfigArn":"arn:x"}`) }), `no "action" string`},
		{"action not a string", with(func(s *Schedule) { s.Payload = []byte(`{"action":1}`) }), `no "action" string`},
		// The function's sweep is not something a user schedules.
		{"action sweep", with(func(s *Schedule) { s.Payload = []byte(`{"action":"sweep"}`) }), `action "sweep" is not start or stop`},
		{"action in capitals", with(func(s *Schedule) { s.Payload = []byte(`{"action":"START"}`) }), `action "START"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want ErrInvalid saying %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.s.Name)) {
				t.Errorf("message %q does not name the schedule", err)
			}
		})
	}
}

// moto validates neither expressions, timezones, ARNs nor permissions, so
// the service's refusals are built here, as the SDK returns them.
func TestExplain(t *testing.T) {
	c := New(nil, "", targetArn, roleArn)
	apiErr := func(code string) error {
		return &smithy.OperationError{ServiceID: "Scheduler", OperationName: "CreateSchedule",
			Err: &smithy.GenericAPIError{Code: code, Message: "from the service"}}
	}
	tests := []struct {
		name, op, schedule string
		err                error
		is                 error // nil: wraps no sentinel
		has                []string
	}{
		{"bad timezone", "CreateSchedule", "nightly", apiErr("ValidationException"), ErrInvalid, []string{`"nightly"`, "from the service"}},
		{"name taken", "CreateSchedule", "nightly", apiErr("ConflictException"), ErrExists, []string{`"nightly"`, `group "sluice"`}},
		{"group deleted meanwhile", "CreateSchedule", "nightly", apiErr("ResourceNotFoundException"), nil, []string{"EnsureGroup"}},
		{"no such schedule", "DeleteSchedule", "nightly", apiErr("ResourceNotFoundException"), ErrNotFound, []string{`"nightly"`}},
		{"may not pass the role", "CreateSchedule", "nightly", apiErr("AccessDeniedException"), nil, []string{"scheduler:CreateSchedule", "iam:PassRole on " + roleArn}},
		{"may not list", "ListSchedules", "", apiErr("AccessDeniedException"), nil, []string{"scheduler:ListSchedules", `schedule group "sluice"`}},
		{"bad credentials", "ListSchedules", "", apiErr("UnrecognizedClientException"), nil, []string{"AWS_ACCESS_KEY_ID"}},
		// A group name the service refuses is not an invalid schedule.
		{"bad group", "CreateScheduleGroup", "", apiErr("ValidationException"), nil, []string{`schedule group "sluice"`}},
		{"network", "GetSchedule", "nightly", errors.New("connection refused"), nil, []string{"GetSchedule", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.explain(tt.op, tt.schedule, tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap the service's error", err)
			}
			for _, s := range []error{ErrExists, ErrNotFound, ErrInvalid} {
				if got := errors.Is(err, s); got != (s == tt.is) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
			for _, h := range tt.has {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("message %q does not say %q", err, h)
				}
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	const (
		target = "SLUICE_SCHEDULE_TARGET_ARN"
		role   = "SLUICE_SCHEDULE_ROLE_ARN"
		group  = "SLUICE_SCHEDULE_GROUP"
	)
	tests := []struct {
		name      string
		env       map[string]string
		wantGroup string
		wantErr   []string // each must appear; nil when valid
		notErr    []string // must not appear
	}{
		{"all set", map[string]string{group: "ops", target: targetArn, role: roleArn}, "ops", nil, nil},
		{"default group", map[string]string{target: targetArn, role: roleArn}, "sluice", nil, nil},
		{"no target", map[string]string{role: roleArn}, "", []string{target + " is not set", "schedule Lambda function"}, []string{role}},
		{"no role", map[string]string{target: targetArn}, "", []string{role + " is not set", "IAM role", "lambda:InvokeFunction"}, []string{target}},
		// Both missing: one run tells the operator both.
		{"neither", nil, "", []string{target + " is not set", role + " is not set"}, nil},
		// A function name where its ARN belongs.
		{"target not an ARN", map[string]string{target: "sluice-schedule", role: roleArn}, "", []string{target + ` "sluice-schedule" is not an ARN`}, nil},
		{"bad group", map[string]string{group: "my group", target: targetArn, role: roleArn}, "", []string{group + ` "my group"`, "1 to 64 letters"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{target, role, group} {
				t.Setenv(k, tt.env[k])
			}
			g, ta, ro, err := ConfigFromEnv()
			if tt.wantErr == nil {
				if err != nil || g != tt.wantGroup || ta != tt.env[target] || ro != tt.env[role] {
					t.Fatalf("ConfigFromEnv = %q, %q, %q, %v; want %q, %q, %q", g, ta, ro, err, tt.wantGroup, tt.env[target], tt.env[role])
				}
				return
			}
			if err == nil {
				t.Fatalf("ConfigFromEnv = %q, %q, %q, nil; want an error", g, ta, ro)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err, s)
				}
			}
			for _, s := range tt.notErr {
				if strings.Contains(err.Error(), s) {
					t.Errorf("message %q blames %q, which is set", err, s)
				}
			}
		})
	}
}
