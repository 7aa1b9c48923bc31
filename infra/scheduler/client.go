package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// getConcurrency bounds the GetSchedule calls List makes at once: enough to
// list a hundred schedules in about a second, well under the service's
// request quota.
const getConcurrency = 8

// Schedule is one user schedule.
type Schedule struct {
	Name       string
	Expression string // at(…), rate(…) or cron(…), as EventBridge writes them
	Timezone   string // IANA name; "" = UTC
	Payload    []byte // the JSON the function receives
	// State is ENABLED or DISABLED; "" means ENABLED on create.
	State       string
	Description string
}

// Client keeps schedules in one schedule group of EventBridge Scheduler,
// each targeting the schedule function.
type Client struct {
	api                       *scheduler.Client
	group, targetArn, roleArn string
	// pageSize is ListSchedules' MaxResults; 0 leaves it to the service.
	// Tests make it small to exercise NextToken.
	pageSize int32
}

// New returns a Client for group ("" means "sluice"). Schedules it creates
// invoke targetArn, the schedule function, as roleArn, a role EventBridge
// Scheduler may assume and that may invoke the function. ConfigFromEnv
// supplies all three.
func New(api *scheduler.Client, group, targetArn, roleArn string) *Client {
	if group == "" {
		group = DefaultGroup
	}
	return &Client{api: api, group: group, targetArn: targetArn, roleArn: roleArn}
}

// EnsureGroup creates the schedule group unless it exists. It is idempotent
// and safe to run concurrently with itself.
func (c *Client) EnsureGroup(ctx context.Context) error {
	// Look before creating: moto's CreateScheduleGroup silently replaces an
	// existing group and drops its schedules, where AWS answers
	// ConflictException. Looking first is right on both.
	_, err := c.api.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(c.group)})
	if err == nil {
		return nil
	}
	if errorCode(err) != "ResourceNotFoundException" {
		return c.explain("GetScheduleGroup", "", err)
	}
	_, err = c.api.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(c.group)})
	if err != nil && errorCode(err) != "ConflictException" { // Conflict: another caller created it meanwhile.
		return c.explain("CreateScheduleGroup", "", err)
	}
	return nil
}

// Create adds s to the group. The schedule fires exactly at its times (no
// flexible window); an at() schedule deletes itself after it has fired.
// Create checks s before calling AWS; a refused schedule's error wraps
// ErrInvalid, a taken name's ErrExists. The group must exist (EnsureGroup).
func (c *Client) Create(ctx context.Context, s Schedule) error {
	if err := s.validate(); err != nil {
		return err
	}
	in := &scheduler.CreateScheduleInput{
		Name:               aws.String(s.Name),
		GroupName:          aws.String(c.group),
		ScheduleExpression: aws.String(s.Expression),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target: &types.Target{
			Arn:     aws.String(c.targetArn),
			RoleArn: aws.String(c.roleArn),
			Input:   aws.String(string(s.Payload)),
		},
		State: types.ScheduleState(s.State),
	}
	if s.Timezone != "" {
		in.ScheduleExpressionTimezone = aws.String(s.Timezone)
	}
	if s.Description != "" {
		in.Description = aws.String(s.Description)
	}
	if isAt(s.Expression) {
		// Otherwise a fired one-time schedule stays in the group, and in
		// every List, for good.
		in.ActionAfterCompletion = types.ActionAfterCompletionDelete
	}
	if _, err := c.api.CreateSchedule(ctx, in); err != nil {
		return c.explain("CreateSchedule", s.Name, err)
	}
	return nil
}

// List returns every schedule of the group, sorted by name. A group that
// does not exist has none. ListSchedules returns only summaries, so List
// reads each schedule with GetSchedule; one deleted meanwhile is left out.
// Payload is the target's input, nil for a schedule made without one.
func (c *Client) List(ctx context.Context) ([]Schedule, error) {
	in := &scheduler.ListSchedulesInput{GroupName: aws.String(c.group)}
	if c.pageSize > 0 {
		in.MaxResults = aws.Int32(c.pageSize)
	}
	var names []string
	for pages := scheduler.NewListSchedulesPaginator(c.api, in); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		if errorCode(err) == "ResourceNotFoundException" {
			return nil, nil
		}
		if err != nil {
			return nil, c.explain("ListSchedules", "", err)
		}
		for _, sum := range page.Schedules {
			names = append(names, aws.ToString(sum.Name))
		}
	}

	got := make([]*Schedule, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(getConcurrency)
	for i, name := range names {
		g.Go(func() error {
			out, err := c.api.GetSchedule(gctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(c.group)})
			if errorCode(err) == "ResourceNotFoundException" {
				return nil
			}
			if err != nil {
				return c.explain("GetSchedule", name, err)
			}
			s := &Schedule{
				Name:        name,
				Expression:  aws.ToString(out.ScheduleExpression),
				Timezone:    aws.ToString(out.ScheduleExpressionTimezone),
				State:       string(out.State),
				Description: aws.ToString(out.Description),
			}
			if out.Target != nil && out.Target.Input != nil {
				s.Payload = []byte(*out.Target.Input)
			}
			got[i] = s
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	list := make([]Schedule, 0, len(got))
	for _, s := range got {
		if s != nil {
			list = append(list, *s)
		}
	}
	slices.SortFunc(list, func(a, b Schedule) int { return cmp.Compare(a.Name, b.Name) })
	return list, nil
}

// Delete removes the schedule called name; if there is none, the error
// wraps ErrNotFound.
func (c *Client) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := c.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(c.group)})
	if err != nil {
		return c.explain("DeleteSchedule", name, err)
	}
	return nil
}

// errorCode is the AWS error code of err, "" if it has none.
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// explain turns a failed call into what the operator must know or fix. op
// is the API action, which is also the IAM action it needs; name is the
// schedule, "" for calls on the group.
func (c *Client) explain(op, name string, err error) error {
	subject := fmt.Sprintf("schedule group %q", c.group)
	if name != "" {
		subject = fmt.Sprintf("schedule %q in group %q", name, c.group)
	}
	switch errorCode(err) {
	case "ConflictException":
		if op == "CreateSchedule" {
			return fmt.Errorf("%w: %s already exists; delete it first or choose another name: %w", ErrExists, subject, err)
		}
	case "ResourceNotFoundException":
		if op == "CreateSchedule" {
			return fmt.Errorf("create %s: the group does not exist; EnsureGroup creates it: %w", subject, err)
		}
		return fmt.Errorf("%w: %s does not exist: %w", ErrNotFound, subject, err)
	case "ValidationException":
		if name != "" {
			return fmt.Errorf("%w %q: EventBridge Scheduler refused it: %w", ErrInvalid, name, err)
		}
	case "AccessDeniedException":
		grant := "scheduler:" + op
		if op == "CreateSchedule" {
			// Creating a schedule hands it the role.
			grant += fmt.Sprintf(" and iam:PassRole on %s", c.roleArn)
		}
		return fmt.Errorf("this AWS identity may not %s (%s); grant it %s: %w", op, subject, grant, err)
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
		return fmt.Errorf("AWS rejected this identity's credentials on %s (%s); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE: %w", op, subject, err)
	}
	return fmt.Errorf("EventBridge Scheduler %s (%s): %w", op, subject, err)
}
