package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awsscheduler "github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/sluicedb/sluice/functions/schedule"
	"github.com/sluicedb/sluice/infra/scheduler"
	"github.com/sluicedb/sluice/infra/store"
)

const scheduleUsage = `usage: sluice schedule create|list|delete [flags]

create -name N -expression EXPR -action start|stop -replication-config-arn ARN
       [-start-replication-type start-replication|resume-processing|reload-target]
       [-timezone Europe/Paris] [-description TEXT]
       EXPR as EventBridge Scheduler writes it: 'cron(0 22 ? * MON-FRI *)',
       'rate(12 hours)', 'at(2026-12-24T18:00:00)'.
list
delete -name N

Schedules are kept in SLUICE_REDIS_URL and fired by sluice serve, unless
SLUICE_SCHEDULER=aws: then they are EventBridge Scheduler schedules in the
group SLUICE_SCHEDULE_GROUP (default sluice) that invoke the schedule function
SLUICE_SCHEDULE_TARGET_ARN as the role SLUICE_SCHEDULE_ROLE_ARN, with the AWS
credentials and region of the environment.`

// scheduleCmd manages schedules that start and stop replications.
func scheduleCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("a command is missing\n\n%s", scheduleUsage)
	}
	fs := flag.NewFlagSet("schedule "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "schedule name")
	expr := fs.String("expression", "", "at(…), rate(…) or cron(…)")
	tz := fs.String("timezone", "", "IANA time zone of the expression (default UTC)")
	action := fs.String("action", "", "start or stop")
	arn := fs.String("replication-config-arn", "", "the replication config to start or stop")
	startType := fs.String("start-replication-type", "", "for start: start-replication, resume-processing or reload-target (default: start-replication on the first run, resume-processing after)")
	desc := fs.String("description", "", "what the schedule is for")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%v\n\n%s", err, scheduleUsage)
	}
	var b scheduleBackend
	var err error
	if contract().Scheduler == "aws" {
		b, err = newAWSSchedules(ctx)
	} else {
		b, err = newLocalSchedules(ctx)
	}
	if err != nil {
		return err
	}
	defer b.close()
	switch args[0] {
	case "create":
		if *name == "" || *expr == "" {
			return fmt.Errorf("create needs -name and -expression\n\n%s", scheduleUsage)
		}
		payload, err := json.Marshal(schedule.Event{Action: *action, ReplicationConfigArn: *arn, StartReplicationType: store.StartType(*startType)})
		if err != nil {
			return err
		}
		// The event is checked here, not when it first fires.
		if _, err := schedule.ParseEvent(payload); err != nil {
			return err
		}
		if err := b.create(ctx, scheduler.Schedule{Name: *name, Expression: *expr, Timezone: *tz, Payload: payload, Description: *desc}); err != nil {
			return err
		}
		fmt.Fprintf(out, "schedule %s created\n", *name)
		return nil
	case "list":
		all, err := b.list(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tEXPRESSION\tTIMEZONE\tNEXT RUN\tPAYLOAD")
		for _, s := range all {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Expression, or(s.Timezone, "UTC"), or(s.next, "-"), s.Payload)
		}
		return w.Flush()
	case "delete":
		if *name == "" {
			return fmt.Errorf("delete needs -name\n\n%s", scheduleUsage)
		}
		if err := b.delete(ctx, *name); err != nil {
			return err
		}
		fmt.Fprintf(out, "schedule %s deleted\n", *name)
		return nil
	}
	return fmt.Errorf("unknown schedule command %q\n\n%s", args[0], scheduleUsage)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// listed is a schedule as list shows it.
type listed struct {
	scheduler.Schedule
	next string // the next run, where known (local schedules)
}

// scheduleBackend is where schedules live: Redis for serve, or AWS.
type scheduleBackend interface {
	create(ctx context.Context, s scheduler.Schedule) error
	list(ctx context.Context) ([]listed, error)
	delete(ctx context.Context, name string) error
	close()
}

type localSchedules struct {
	st    *store.Store
	local *schedule.Local
}

func newLocalSchedules(ctx context.Context) (*localSchedules, error) {
	st, err := contract().OpenStore(ctx)
	if err != nil {
		return nil, err
	}
	return &localSchedules{st: st, local: &schedule.Local{Store: st}}, nil
}

func (l *localSchedules) create(ctx context.Context, s scheduler.Schedule) error {
	return l.local.Create(ctx, &store.Schedule{Name: s.Name, Expression: s.Expression, Timezone: s.Timezone, Payload: s.Payload, Description: s.Description})
}

func (l *localSchedules) list(ctx context.Context) ([]listed, error) {
	all, err := l.st.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]listed, 0, len(all))
	for _, s := range all {
		ls := listed{Schedule: scheduler.Schedule{Name: s.Name, Expression: s.Expression, Timezone: s.Timezone, Payload: s.Payload, Description: s.Description}}
		if s.NextRun != nil {
			ls.next = s.NextRun.UTC().Format(time.RFC3339)
		}
		out = append(out, ls)
	}
	return out, nil
}

func (l *localSchedules) delete(ctx context.Context, name string) error {
	return l.st.DeleteSchedule(ctx, name)
}

func (l *localSchedules) close() { l.st.Close() }

type awsSchedules struct{ c *scheduler.Client }

func newAWSSchedules(ctx context.Context) (*awsSchedules, error) {
	group, target, role, err := scheduler.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return &awsSchedules{c: scheduler.New(awsscheduler.NewFromConfig(cfg), group, target, role)}, nil
}

func (a *awsSchedules) create(ctx context.Context, s scheduler.Schedule) error {
	if err := a.c.EnsureGroup(ctx); err != nil {
		return err
	}
	return a.c.Create(ctx, s)
}

func (a *awsSchedules) list(ctx context.Context) ([]listed, error) {
	all, err := a.c.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]listed, len(all))
	for i, s := range all {
		out[i] = listed{Schedule: s}
	}
	return out, nil
}

func (a *awsSchedules) delete(ctx context.Context, name string) error { return a.c.Delete(ctx, name) }

func (a *awsSchedules) close() {}
