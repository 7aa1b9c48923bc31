package scheduler

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// EventBridge Scheduler's rule for schedule and group names. Checking it here
// gives one clear message instead of the service's pattern dump, and keeps a
// name with a slash from becoming another URL path.
var namePattern = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)

const nameRule = "use 1 to 64 letters, digits, '-', '_' or '.'"

const payloadExample = `{"action":"start","replicationConfigArn":"arn:aws:dms:…"}`

// validate checks what the service would refuse, or accept and then fail
// with at every firing. The expression is only told apart, not parsed:
// EventBridge Scheduler parses it.
func (s Schedule) validate() error {
	if err := checkName(s.Name); err != nil {
		return err
	}
	if !isAt(s.Expression) && !isRecurring(s.Expression) {
		return fmt.Errorf("%w %q: expression %q is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(minutes hours day-of-month month day-of-week year)", ErrInvalid, s.Name, s.Expression)
	}
	switch s.State {
	case "", "ENABLED", "DISABLED":
	default:
		return fmt.Errorf("%w %q: state %q is not ENABLED or DISABLED", ErrInvalid, s.Name, s.State)
	}
	if err := checkPayload(s.Payload); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalid, s.Name, err)
	}
	return nil
}

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w name %q: %s", ErrInvalid, name, nameRule)
	}
	return nil
}

// checkPayload accepts only the user actions: the every-minute sweep is not
// a user schedule. The full event contract (replicationConfigArn, no other
// keys) is functions/schedule.ParseEvent's, which this lower layer does not
// import; callers that build a payload check it there. The error is a plain
// sentence for validate to wrap.
func checkPayload(p []byte) error {
	var doc map[string]json.RawMessage
	// "null" decodes without error into a nil map.
	if json.Unmarshal(p, &doc) != nil || doc == nil {
		return fmt.Errorf("the payload is not a JSON object like %s", payloadExample)
	}
	var action string
	if json.Unmarshal(doc["action"], &action) != nil {
		return fmt.Errorf(`the payload has no "action" string; want one like %s`, payloadExample)
	}
	if action != "start" && action != "stop" {
		return fmt.Errorf(`the payload's action %q is not start or stop`, action)
	}
	return nil
}

func isAt(expr string) bool { return hasForm(expr, "at(") }

func isRecurring(expr string) bool { return hasForm(expr, "rate(") || hasForm(expr, "cron(") }

func hasForm(expr, open string) bool {
	return strings.HasPrefix(expr, open) && strings.HasSuffix(expr, ")") && len(expr) > len(open)+1
}
