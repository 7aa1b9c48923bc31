package scheduler

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultGroup is the schedule group when SLUICE_SCHEDULE_GROUP is unset.
const DefaultGroup = "sluice"

// ConfigFromEnv reads SLUICE_SCHEDULE_GROUP (default "sluice"),
// SLUICE_SCHEDULE_TARGET_ARN and SLUICE_SCHEDULE_ROLE_ARN, the arguments of
// New. The two ARNs are required; the error names every variable that is
// missing or malformed and says what it should hold.
func ConfigFromEnv() (group, targetArn, roleArn string, err error) {
	group = strings.TrimSpace(os.Getenv("SLUICE_SCHEDULE_GROUP"))
	if group == "" {
		group = DefaultGroup
	}
	targetArn = strings.TrimSpace(os.Getenv("SLUICE_SCHEDULE_TARGET_ARN"))
	roleArn = strings.TrimSpace(os.Getenv("SLUICE_SCHEDULE_ROLE_ARN"))
	var errs []error
	if !namePattern.MatchString(group) {
		errs = append(errs, fmt.Errorf("SLUICE_SCHEDULE_GROUP %q is not a schedule group name: %s", group, nameRule))
	}
	errs = append(errs,
		checkArn("SLUICE_SCHEDULE_TARGET_ARN", targetArn,
			"the ARN of the Sluice schedule Lambda function that schedules invoke, like arn:aws:lambda:REGION:ACCOUNT:function:NAME"),
		checkArn("SLUICE_SCHEDULE_ROLE_ARN", roleArn,
			"the ARN of the IAM role EventBridge Scheduler assumes to invoke that function (it needs lambda:InvokeFunction on it), like arn:aws:iam::ACCOUNT:role/NAME"))
	if err := errors.Join(errs...); err != nil {
		return "", "", "", err
	}
	return group, targetArn, roleArn, nil
}

func checkArn(variable, value, what string) error {
	switch {
	case value == "":
		return fmt.Errorf("%s is not set: it must hold %s", variable, what)
	case !strings.HasPrefix(value, "arn:"):
		return fmt.Errorf("%s %q is not an ARN: it must hold %s", variable, value, what)
	}
	return nil
}
