package mapping

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule types, targets and actions as spelled in DMS table-mappings JSON.
const (
	typeSelection      = "selection"
	typeTransformation = "transformation"
	// Table settings (parallel load, LOB handling) and post-processing
	// (S3 object tagging) are DMS rule types handled outside this package;
	// they are recognised only so that valid documents are not rejected.
	typeTableSettings  = "table-settings"
	typePostProcessing = "post-processing"

	actionInclude  = "include"
	actionExclude  = "exclude"
	actionExplicit = "explicit"

	targetSchema = "schema"
	targetTable  = "table"
	targetColumn = "column"

	actionRename        = "rename"
	actionLowercase     = "convert-lowercase"
	actionUppercase     = "convert-uppercase"
	actionAddPrefix     = "add-prefix"
	actionRemovePrefix  = "remove-prefix"
	actionReplacePrefix = "replace-prefix"
	actionAddSuffix     = "add-suffix"
	actionRemoveSuffix  = "remove-suffix"
	actionReplaceSuffix = "replace-suffix"
	actionRemoveColumn  = "remove-column"
)

// wildcard is the only pattern character DMS object locators know; '_' is
// matched literally even though it is a wildcard in SQL LIKE.
const wildcard = '%'

var (
	ruleTypes        = []string{typeSelection, typeTransformation, typeTableSettings, typePostProcessing}
	selectionActions = []string{actionInclude, actionExclude, actionExplicit}
	ruleTargets      = []string{targetSchema, targetTable, targetColumn}
	nameActions      = []string{
		actionRename, actionLowercase, actionUppercase,
		actionAddPrefix, actionRemovePrefix, actionReplacePrefix,
		actionAddSuffix, actionRemoveSuffix, actionReplaceSuffix,
	}
	columnActions = append(slices.Clone(nameActions), actionRemoveColumn)
)

// Rules is a parsed and validated DMS table-mappings document. It is not
// modified after Parse, so one value may be shared by concurrent readers.
type Rules struct {
	selections []selectionRule
	// transforms is sorted by rule-id because DMS applies transformations
	// in rule-id order, not document order.
	transforms []transformRule
}

type selectionRule struct {
	action        string
	schema, table string // patterns
}

type transformRule struct {
	id                    uint64
	target, action        string
	schema, table, column string // patterns; unused levels are ""
	value, oldValue       string
}

// TableMap is the target naming of one source table.
type TableMap struct {
	SourceSchema, SourceTable string
	TargetSchema, TargetTable string
	// Columns has the same length and order as the columns passed to Map.
	Columns []ColumnMap
}

// ColumnMap is the target naming of one source column.
type ColumnMap struct {
	Source, Target string
	// Removed reports that a remove-column rule matched: the column is not
	// replicated and Target is "".
	Removed bool
}

// Column returns the ColumnMap for a source column name and whether it exists.
func (m TableMap) Column(source string) (ColumnMap, bool) {
	for _, c := range m.Columns {
		if c.Source == source {
			return c, true
		}
	}
	return ColumnMap{}, false
}

// Parse reads a DMS table-mappings document. Every error it returns wraps
// ErrInvalid; errors about a single rule are a *RuleError that names the
// rule, the offending field and what is allowed.
//
// Selection filters and the table-settings and post-processing rule types
// are accepted without being interpreted, because other parts of the
// replicator own them.
func Parse(doc []byte) (*Rules, error) {
	rules, err := parse(doc)
	if err != nil {
		return nil, fmt.Errorf("parse table mappings: %w", err)
	}
	return rules, nil
}

func parse(doc []byte) (*Rules, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("%w: malformed JSON at byte offset %d: %v", ErrInvalid, syntax.Offset, err)
		}
		return nil, fmt.Errorf(`%w: the document must be a JSON object with a "rules" array, got %s`, ErrInvalid, jsonKind(err))
	}
	rawRules, ok := top["rules"]
	if !ok || isNull(rawRules) {
		return nil, fmt.Errorf(`%w: no "rules" array; the document must look like {"rules": [...]}`, ErrInvalid)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawRules, &items); err != nil {
		return nil, fmt.Errorf(`%w: "rules" must be an array of rule objects, got %s`, ErrInvalid, jsonKind(err))
	}

	r := &Rules{}
	seenIDs := map[uint64]int{} // rule-id -> index, to reject ambiguous ordering
	for i, raw := range items {
		if err := r.addRule(i, raw, seenIDs); err != nil {
			return nil, err
		}
	}
	if len(r.selections) == 0 {
		return nil, fmt.Errorf(`%w: no selection rule; at least one rule with "rule-type": "selection" is required to choose source tables`, ErrInvalid)
	}
	// rule-ids are unique (checked above), so the order is total.
	slices.SortFunc(r.transforms, func(a, b transformRule) int {
		return cmp.Compare(a.id, b.id)
	})
	return r, nil
}

// ruleReader reads the fields of one rule and builds errors that identify it.
type ruleReader struct {
	index    int
	fields   map[string]json.RawMessage
	id, name string // as written, for error messages only
}

func (rr *ruleReader) fail(field, format string, args ...any) *RuleError {
	return &RuleError{
		Index:    rr.index,
		RuleID:   rr.id,
		RuleName: rr.name,
		Field:    field,
		Problem:  fmt.Sprintf(format, args...),
	}
}

// str returns the string at key in m. Absent and null both count as not
// present, because the DMS console writes "value": null for actions that
// take no value. path prefixes key in error messages.
func (rr *ruleReader) str(m map[string]json.RawMessage, path, key string) (string, bool, error) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, rr.fail(path+key, "must be a JSON string, got %s", snippet(raw))
	}
	return s, true, nil
}

// oneOf reads a required field whose value must be one of allowed.
func (rr *ruleReader) oneOf(key, what string, allowed []string) (string, error) {
	v, ok, err := rr.str(rr.fields, "", key)
	switch {
	case err != nil:
		return "", err
	case !ok || v == "":
		return "", rr.fail(key, "missing; allowed: %s", strings.Join(allowed, ", "))
	case !slices.Contains(allowed, v):
		return "", rr.fail(key, "%q is not supported %s; allowed: %s", v, what, strings.Join(allowed, ", "))
	}
	return v, nil
}

// ruleID reads the numeric rule-id that orders transformations.
func (rr *ruleReader) ruleID(seen map[uint64]int) (uint64, error) {
	raw, ok := rr.fields["rule-id"]
	if !ok || isNull(raw) {
		return 0, rr.fail("rule-id", "missing; every selection and transformation rule needs a unique numeric rule-id")
	}
	text, ok := scalarText(raw)
	if !ok {
		return 0, rr.fail("rule-id", "must be a string or number holding a non-negative integer, got %s", snippet(raw))
	}
	id, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, rr.fail("rule-id", "%q is not a non-negative integer; DMS rule-ids are numeric because they order the rules", text)
	}
	if prev, dup := seen[id]; dup {
		return 0, rr.fail("rule-id", "%d is also used by rules[%d]; rule-ids must be unique", id, prev)
	}
	seen[id] = rr.index
	return id, nil
}

// locator reads the object-locator and the names it must contain, in
// schema, table, column order; need says how many of those are required.
func (rr *ruleReader) locator(need int, why string) ([3]string, error) {
	var names [3]string
	raw, ok := rr.fields["object-locator"]
	if !ok || isNull(raw) {
		return names, rr.fail("object-locator", "missing; it must be an object with %s", why)
	}
	var loc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &loc); err != nil {
		return names, rr.fail("object-locator", "must be a JSON object with %s, got %s", why, snippet(raw))
	}
	for i, key := range []string{"schema-name", "table-name", "column-name"}[:need] {
		v, ok, err := rr.str(loc, "object-locator.", key)
		if err != nil {
			return names, err
		}
		if !ok || v == "" {
			return names, rr.fail("object-locator."+key, "missing; give a name or a %%-pattern such as \"%%\" (an object-locator here needs %s)", why)
		}
		names[i] = v
	}
	return names, nil
}

func (r *Rules) addRule(index int, raw json.RawMessage, seenIDs map[uint64]int) error {
	rr := &ruleReader{index: index}
	if err := json.Unmarshal(raw, &rr.fields); err != nil || rr.fields == nil {
		return rr.fail("", "must be a JSON object, got %s", snippet(raw))
	}
	rr.id, _ = scalarText(rr.fields["rule-id"])
	rr.name, _ = scalarText(rr.fields["rule-name"])

	ruleType, err := rr.oneOf("rule-type", "as a DMS rule type", ruleTypes)
	if err != nil {
		return err
	}
	switch ruleType {
	case typeSelection:
		return r.addSelection(rr, seenIDs)
	case typeTransformation:
		return r.addTransformation(rr, seenIDs)
	}
	return nil // table-settings and post-processing: handled elsewhere
}

func (r *Rules) addSelection(rr *ruleReader, seenIDs map[uint64]int) error {
	if _, err := rr.ruleID(seenIDs); err != nil {
		return err
	}
	action, err := rr.oneOf("rule-action", "for a selection rule", selectionActions)
	if err != nil {
		return err
	}
	names, err := rr.locator(2, "schema-name and table-name")
	if err != nil {
		return err
	}
	if action == actionExplicit {
		// DMS defines explicit as naming exactly one table, which is what
		// lets it select tables that wildcard includes would skip.
		for i, key := range []string{"schema-name", "table-name"} {
			if strings.ContainsRune(names[i], wildcard) {
				return rr.fail("object-locator."+key, "%q contains the wildcard %%, which an explicit rule does not allow; name one table or use rule-action include", names[i])
			}
		}
	}
	r.selections = append(r.selections, selectionRule{action: action, schema: names[0], table: names[1]})
	return nil
}

func (r *Rules) addTransformation(rr *ruleReader, seenIDs map[uint64]int) error {
	id, err := rr.ruleID(seenIDs)
	if err != nil {
		return err
	}
	target, err := rr.oneOf("rule-target", "for a transformation rule", ruleTargets)
	if err != nil {
		return err
	}
	allowed, need, why := nameActions, 1, "schema-name"
	switch target {
	case targetTable:
		need, why = 2, "schema-name and table-name"
	case targetColumn:
		allowed, need, why = columnActions, 3, "schema-name, table-name and column-name"
	}
	action, err := rr.oneOf("rule-action", fmt.Sprintf("for rule-target %q", target), allowed)
	if err != nil {
		return err
	}
	names, err := rr.locator(need, why)
	if err != nil {
		return err
	}
	t := transformRule{id: id, target: target, action: action, schema: names[0], table: names[1], column: names[2]}

	value, hasValue, err := rr.str(rr.fields, "", "value")
	if err != nil {
		return err
	}
	oldValue, hasOld, err := rr.str(rr.fields, "", "old-value")
	if err != nil {
		return err
	}
	switch action {
	case actionRename, actionAddPrefix, actionRemovePrefix, actionAddSuffix, actionRemoveSuffix:
		// An empty value would rename to "" or be a silent no-op; both
		// are mistakes worth reporting.
		if !hasValue || value == "" {
			return rr.fail("value", "missing; rule-action %q needs a non-empty %s in \"value\"", action, valueMeaning(action))
		}
	case actionReplacePrefix, actionReplaceSuffix:
		if !hasOld || oldValue == "" {
			return rr.fail("old-value", "missing; rule-action %q replaces a non-empty \"old-value\" with \"value\"", action)
		}
		// The replacement may be "" (strip the old prefix) but must be
		// stated, so a forgotten field is not mistaken for that intent.
		if !hasValue {
			return rr.fail("value", "missing; rule-action %q replaces \"old-value\" with \"value\" (use \"\" to strip it)", action)
		}
	}
	t.value, t.oldValue = value, oldValue
	r.transforms = append(r.transforms, t)
	return nil
}

func valueMeaning(action string) string {
	switch action {
	case actionRename:
		return "new name"
	case actionAddPrefix, actionRemovePrefix:
		return "prefix"
	}
	return "suffix"
}

// Selected reports whether a source table is selected: it matches at least
// one include or explicit selection rule and no exclude rule, whatever the
// rule order. Matching is case-sensitive, as DMS does for PostgreSQL; '%'
// matches any run of characters and '_' is a literal underscore.
func (r *Rules) Selected(schema, table string) bool {
	if r == nil {
		return false
	}
	included := false
	for _, s := range r.selections {
		if !match(s.schema, schema) || !match(s.table, table) {
			continue
		}
		if s.action == actionExclude {
			return false
		}
		included = true
	}
	return included
}

// Map returns the target names of a source table and its columns (given in
// source order). It does not check selection; callers ask Selected first.
//
// The target schema starts as defaultSchema when it is not "" (DMS
// TargetMetadata.TargetSchema), otherwise as the source schema. Then the
// transformation rules run in ascending rule-id order, each seeing the name
// left by the previous one, while their object locators are matched against
// the original source names. Once a remove-column rule matches a column,
// later rules leave that column alone.
func (r *Rules) Map(schema, table string, columns []string, defaultSchema string) TableMap {
	m := TableMap{
		SourceSchema: schema,
		SourceTable:  table,
		TargetSchema: schema,
		TargetTable:  table,
		Columns:      make([]ColumnMap, len(columns)),
	}
	if defaultSchema != "" {
		m.TargetSchema = defaultSchema
	}
	for i, c := range columns {
		m.Columns[i] = ColumnMap{Source: c, Target: c}
	}
	if r == nil {
		return m
	}
	for _, t := range r.transforms {
		if !match(t.schema, schema) {
			continue
		}
		switch t.target {
		case targetSchema:
			// DMS schema rules locate by schema-name only.
			m.TargetSchema = t.apply(m.TargetSchema)
		case targetTable:
			if match(t.table, table) {
				m.TargetTable = t.apply(m.TargetTable)
			}
		case targetColumn:
			if !match(t.table, table) {
				continue
			}
			for i := range m.Columns {
				c := &m.Columns[i]
				if c.Removed || !match(t.column, c.Source) {
					continue
				}
				if t.action == actionRemoveColumn {
					c.Removed, c.Target = true, ""
					continue
				}
				c.Target = t.apply(c.Target)
			}
		}
	}
	return m
}

// apply returns name transformed by the rule's action. Prefix and suffix
// removal and replacement change only names that carry the affix.
func (t transformRule) apply(name string) string {
	switch t.action {
	case actionRename:
		return t.value
	case actionLowercase:
		return strings.ToLower(name)
	case actionUppercase:
		return strings.ToUpper(name)
	case actionAddPrefix:
		return t.value + name
	case actionRemovePrefix:
		return strings.TrimPrefix(name, t.value)
	case actionReplacePrefix:
		if rest, ok := strings.CutPrefix(name, t.oldValue); ok {
			return t.value + rest
		}
	case actionAddSuffix:
		return name + t.value
	case actionRemoveSuffix:
		return strings.TrimSuffix(name, t.value)
	case actionReplaceSuffix:
		if rest, ok := strings.CutSuffix(name, t.oldValue); ok {
			return rest + t.value
		}
	}
	return name
}

// match reports whether name matches a DMS object-locator pattern: '%'
// matches any run of bytes, including none, and every other byte matches
// itself case-sensitively. Working on bytes is safe for UTF-8 because a
// literal run can only match at a rune boundary.
func match(pattern, name string) bool {
	p, n := 0, 0
	star, resume := -1, 0 // last '%' seen and where its run would end next
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == wildcard:
			star, resume = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			// Let the last '%' swallow one more byte and retry. Earlier
			// '%'s never need revisiting: whatever they could absorb, the
			// last one can too, so a single backtrack point suffices.
			resume++
			p, n = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == wildcard {
		p++
	}
	return p == len(pattern)
}

// scalarText returns a JSON string's contents or a JSON number's literal
// text, since DMS documents write rule-id and rule-name either way.
func scalarText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	if raw[0] != '"' && json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// jsonKind names the JSON value an Unmarshal type error was about, without
// the Go type names that mean nothing to someone writing table mappings.
func jsonKind(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "a JSON " + typeErr.Value
	}
	return err.Error()
}

// snippet shortens raw JSON quoted in error messages so one bad rule cannot
// flood a log line.
func snippet(raw json.RawMessage) string {
	const limit = 60
	if len(raw) <= limit {
		return string(raw)
	}
	return string(raw[:limit]) + "..."
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
