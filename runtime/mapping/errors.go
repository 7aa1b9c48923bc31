package mapping

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns, so callers can turn any
// table-mappings problem into DMS's InvalidParameterValueException without
// matching on message text.
var ErrInvalid = errors.New("invalid table mappings")

// RuleError describes a problem with one rule of a table-mappings document.
// It carries the rule's position and identity because documents can hold
// hundreds of rules and the operator needs to find the broken one.
type RuleError struct {
	// Index is the 0-based position of the rule in the "rules" array.
	Index int
	// RuleID and RuleName are the rule's "rule-id" and "rule-name" as
	// written, or "" when absent or not a string or number.
	RuleID, RuleName string
	// Field is the offending field, such as "rule-action" or
	// "object-locator.table-name", or "" when the rule as a whole is wrong.
	Field string
	// Problem says what is wrong and what is allowed instead.
	Problem string
}

// Error formats the error as `rules[1] (rule-id "2", rule-name "x"): field: problem`.
func (e *RuleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rules[%d]", e.Index)
	switch {
	case e.RuleID != "" && e.RuleName != "":
		fmt.Fprintf(&b, " (rule-id %q, rule-name %q)", e.RuleID, e.RuleName)
	case e.RuleID != "":
		fmt.Fprintf(&b, " (rule-id %q)", e.RuleID)
	case e.RuleName != "":
		fmt.Fprintf(&b, " (rule-name %q)", e.RuleName)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns ErrInvalid so errors.Is(err, ErrInvalid) holds for rule
// errors as it does for document-level ones.
func (e *RuleError) Unwrap() error { return ErrInvalid }
