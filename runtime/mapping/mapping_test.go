package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// selectAll is a selection rule that includes every table, so Map cases
// only show the transformation they are about.
const selectAll = `{"rule-type":"selection","rule-id":"1","rule-name":"all","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"include"}`

// removed marks an expected column that a remove-column rule dropped.
const removed = "<removed>"

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, doc []byte) *Rules {
	t.Helper()
	r, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

// doc wraps rules (JSON objects) into a table-mappings document.
func doc(rules ...string) []byte {
	return []byte(`{"rules":[` + strings.Join(rules, ",") + `]}`)
}

// tf renders a transformation rule. loc is "schema[.table[.column]]" and kv
// holds extra string fields as key, value pairs.
func tf(id int, target, action, loc string, kv ...string) string {
	keys := []string{"schema-name", "table-name", "column-name"}
	locator := map[string]string{}
	for i, part := range strings.Split(loc, ".") {
		locator[keys[i]] = part
	}
	r := map[string]any{
		"rule-type":      "transformation",
		"rule-id":        strconv.Itoa(id),
		"rule-name":      fmt.Sprintf("t%d", id),
		"rule-target":    target,
		"rule-action":    action,
		"object-locator": locator,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r[kv[i]] = kv[i+1]
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"orders", "orders", true},   // a pattern without % is an exact name
		{"orders", "Orders", false},  // matching is case-sensitive, as DMS for PostgreSQL
		{"orders", "orders2", false}, // no implicit trailing wildcard
		{"%", "", true},              // % matches an empty run
		{"%", "anything", true},      // % alone matches every name
		{"ord%", "orders", true},     // prefix pattern
		{"ord%", "ord", true},        // prefix pattern with an empty run
		{"ord%", "xorders", false},   // prefix pattern is anchored at the start
		{"%ers", "orders", true},     // suffix pattern
		{"%ers", "ordersx", false},   // suffix pattern is anchored at the end
		{"a%b%c", "aXXbYYc", true},   // several wildcards
		{"a%a", "a", false},          // both literal a's are needed
		{"%ab", "aab", true},         // needs backtracking after a false start
		{"%%", "", true},             // adjacent wildcards collapse
		{"a_b", "a_b", true},         // underscore matches itself
		{"a_b", "aXb", false},        // underscore is not a single-character wildcard
		{"é%", "éa", true},           // multi-byte names
	}
	for _, tt := range tests {
		if got := match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestSelected(t *testing.T) {
	r := mustParse(t, readTestdata(t, "selection.json"))
	tests := []struct {
		schema, table string
		want          bool
	}{
		{"public", "users", true},              // include public.% selects any table
		{"public", "tmp_import", false},        // exclude prefix% beats the include
		{"public", "tmp", false},               // exclude tmp% also matches with an empty run
		{"public", "orders_bak", false},        // exclude %suffix beats the include
		{"public", "bak", true},                // %_bak needs the literal "_bak"
		{"sales", "order_line", true},          // literal underscore matches itself
		{"sales", "orderXline", false},         // underscore is not a single-character wildcard
		{"sales", "order_lines", false},        // a name without % is exact
		{"sales", "customers", false},          // no rule covers it
		{"billing", "audit_log", true},         // % schema with a wildcard in the middle of the table
		{"billing", "auditlog", true},          // middle % matching an empty run
		{"Crm", "Accounts", true},              // explicit selects exactly the named table
		{"crm", "accounts", false},             // explicit is case-sensitive
		{"Crm", "accounts", false},             // table name case matters too
		{"PUBLIC", "users", false},             // schema name case matters
		{"hr", "employees", true},              // included by hr.emp%
		{"hr", "employees_secret", false},      // exclude wins even with a lower rule-id than the include
		{"hr", "departments", false},           // hr.emp% does not cover it
		{"public", "employees_secret", true},   // the hr exclude is scoped to its schema
		{"billing", "audit_log_bak", false},    // audit%log must end in "log"
		{"billing", "prefix_audit_log", false}, // audit%log is anchored at the start
	}
	for _, tt := range tests {
		if got := r.Selected(tt.schema, tt.table); got != tt.want {
			t.Errorf("Selected(%q, %q) = %v, want %v", tt.schema, tt.table, got, tt.want)
		}
	}
}

func TestSelectedNilRules(t *testing.T) {
	// A nil *Rules selects nothing rather than panicking.
	var r *Rules
	if r.Selected("public", "t") {
		t.Error("nil Rules selected a table")
	}
}

func TestMap(t *testing.T) {
	cols := []string{"id", "created_at"}
	tests := []struct {
		name          string
		rules         []string // transformation rules; selectAll is prepended
		schema, table string
		columns       []string
		defaultSchema string
		wantSchema    string
		wantTable     string
		wantColumns   []string // target names, or removed
	}{
		{
			// Without transformations names pass through unchanged.
			name: "identity", schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// rename on a schema target.
			name:   "rename schema",
			rules:  []string{tf(2, "schema", "rename", "public", "value", "app")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "app", wantTable: "orders", wantColumns: cols,
		},
		{
			// rename on a table target.
			name:   "rename table",
			rules:  []string{tf(2, "table", "rename", "public.orders", "value", "purchases")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "purchases", wantColumns: cols,
		},
		{
			// rename on a column target touches only the named column.
			name:   "rename column",
			rules:  []string{tf(2, "column", "rename", "public.orders.created_at", "value", "ctime")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"id", "ctime"},
		},
		{
			// convert-lowercase ignores the null value the console writes.
			name:   "convert-lowercase",
			rules:  []string{`{"rule-type":"transformation","rule-id":"2","rule-name":"2","rule-target":"table","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"convert-lowercase","value":null,"old-value":null}`},
			schema: "Public", table: "Orders", columns: cols,
			wantSchema: "Public", wantTable: "orders", wantColumns: cols,
		},
		{
			// convert-uppercase on columns via a % column locator.
			name:   "convert-uppercase",
			rules:  []string{tf(2, "column", "convert-uppercase", "%.%.%")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"ID", "CREATED_AT"},
		},
		{
			// add-prefix prepends value.
			name:   "add-prefix",
			rules:  []string{tf(2, "table", "add-prefix", "public.%", "value", "src_")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "src_orders", wantColumns: cols,
		},
		{
			// remove-prefix strips value when present.
			name:   "remove-prefix present",
			rules:  []string{tf(2, "table", "remove-prefix", "public.%", "value", "tbl_")},
			schema: "public", table: "tbl_orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// remove-prefix leaves names without the prefix alone.
			name:   "remove-prefix absent",
			rules:  []string{tf(2, "table", "remove-prefix", "public.%", "value", "tbl_")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// replace-prefix swaps old-value for value when present.
			name:   "replace-prefix present",
			rules:  []string{tf(2, "column", "replace-prefix", "public.orders.%", "old-value", "created_", "value", "made_")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"id", "made_at"},
		},
		{
			// replace-prefix leaves names without old-value alone.
			name:   "replace-prefix absent",
			rules:  []string{tf(2, "table", "replace-prefix", "public.%", "old-value", "tbl_", "value", "t_")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// replace-prefix with an empty value strips old-value.
			name:   "replace-prefix to empty",
			rules:  []string{tf(2, "schema", "replace-prefix", "%", "old-value", "legacy_", "value", "")},
			schema: "legacy_sales", table: "orders", columns: cols,
			wantSchema: "sales", wantTable: "orders", wantColumns: cols,
		},
		{
			// add-suffix appends value.
			name:   "add-suffix",
			rules:  []string{tf(2, "schema", "add-suffix", "public", "value", "_replica")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public_replica", wantTable: "orders", wantColumns: cols,
		},
		{
			// remove-suffix strips value when present.
			name:   "remove-suffix present",
			rules:  []string{tf(2, "column", "remove-suffix", "public.orders.%", "value", "_at")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"id", "created"},
		},
		{
			// remove-suffix leaves names without the suffix alone.
			name:   "remove-suffix absent",
			rules:  []string{tf(2, "table", "remove-suffix", "public.%", "value", "_v1")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// replace-suffix swaps old-value for value when present.
			name:   "replace-suffix present",
			rules:  []string{tf(2, "table", "replace-suffix", "public.%", "old-value", "_v1", "value", "_v2")},
			schema: "public", table: "orders_v1", columns: cols,
			wantSchema: "public", wantTable: "orders_v2", wantColumns: cols,
		},
		{
			// replace-suffix leaves names without old-value alone.
			name:   "replace-suffix absent",
			rules:  []string{tf(2, "table", "replace-suffix", "public.%", "old-value", "_v1", "value", "_v2")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// Rules run in numeric rule-id order, not document order and
			// not string order ("10" < "9" as strings): uppercase (9) runs
			// before add-prefix (10), so the prefix stays lowercase.
			name: "rule-id order",
			rules: []string{
				tf(10, "table", "add-prefix", "public.orders", "value", "x_"),
				tf(9, "table", "convert-uppercase", "public.orders"),
			},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "x_ORDERS", wantColumns: cols,
		},
		{
			// Each rule sees the previous result, but locators match the
			// original name: rule 3 still finds "orders" after the rename,
			// and rule 4, written for the renamed table, never matches.
			name: "chained rules match original names",
			rules: []string{
				tf(2, "table", "rename", "public.orders", "value", "sales_orders"),
				tf(3, "table", "add-suffix", "public.orders", "value", "_v2"),
				tf(4, "table", "add-suffix", "public.sales_orders", "value", "_never"),
			},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "sales_orders_v2", wantColumns: cols,
		},
		{
			// A column locator with a suffix wildcard picks matching columns only.
			name:   "column wildcard",
			rules:  []string{tf(2, "column", "convert-uppercase", "public.orders.%_at")},
			schema: "public", table: "orders", columns: []string{"id", "created_at", "updated_at", "at"},
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"id", "CREATED_AT", "UPDATED_AT", "at"},
		},
		{
			// Rules scoped to another table or schema do not apply.
			name: "locator scope",
			rules: []string{
				tf(2, "table", "rename", "public.customers", "value", "clients"),
				tf(3, "column", "rename", "sales.orders.id", "value", "order_id"),
				tf(4, "schema", "rename", "sales", "value", "shop"),
			},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// Transformation locators are case-sensitive like selection.
			name:   "locator case sensitivity",
			rules:  []string{tf(2, "table", "rename", "public.Orders", "value", "purchases")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: cols,
		},
		{
			// remove-column marks the column removed and clears its target.
			name:   "remove-column",
			rules:  []string{tf(2, "column", "remove-column", "public.orders.created_at")},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"id", removed},
		},
		{
			// A later rule cannot resurrect or rename a removed column.
			name: "rules after remove-column",
			rules: []string{
				tf(2, "column", "remove-column", "public.orders.created_at"),
				tf(3, "column", "add-prefix", "public.orders.%", "value", "c_"),
			},
			schema: "public", table: "orders", columns: cols,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{"c_id", removed},
		},
		{
			// defaultSchema replaces the source schema as the target schema.
			name:   "defaultSchema",
			schema: "public", table: "orders", columns: cols, defaultSchema: "staging",
			wantSchema: "staging", wantTable: "orders", wantColumns: cols,
		},
		{
			// Schema rules run after defaultSchema and transform it, while
			// their locator still matches the source schema "public".
			name:   "defaultSchema then schema rule",
			rules:  []string{tf(2, "schema", "add-suffix", "public", "value", "_v2")},
			schema: "public", table: "orders", columns: cols, defaultSchema: "staging",
			wantSchema: "staging_v2", wantTable: "orders", wantColumns: cols,
		},
		{
			// A locator naming defaultSchema does not match: locators see source names.
			name:   "defaultSchema not matched by locator",
			rules:  []string{tf(2, "schema", "rename", "staging", "value", "other")},
			schema: "public", table: "orders", columns: cols, defaultSchema: "staging",
			wantSchema: "staging", wantTable: "orders", wantColumns: cols,
		},
		{
			// A table without columns maps to an empty, non-nil column list.
			name:   "no columns",
			schema: "public", table: "orders", columns: nil,
			wantSchema: "public", wantTable: "orders", wantColumns: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, doc(append([]string{selectAll}, tt.rules...)...))
			want := TableMap{
				SourceSchema: tt.schema,
				SourceTable:  tt.table,
				TargetSchema: tt.wantSchema,
				TargetTable:  tt.wantTable,
				Columns:      make([]ColumnMap, len(tt.wantColumns)),
			}
			for i, target := range tt.wantColumns {
				c := ColumnMap{Source: tt.columns[i], Target: target}
				if target == removed {
					c.Target, c.Removed = "", true
				}
				want.Columns[i] = c
			}
			got := r.Map(tt.schema, tt.table, tt.columns, tt.defaultSchema)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Map(%q, %q, %q, %q)\n got %+v\nwant %+v", tt.schema, tt.table, tt.columns, tt.defaultSchema, got, want)
			}
		})
	}
}

func TestMapDoesNotAliasColumns(t *testing.T) {
	// Map must copy: callers reuse their column slices between tables.
	r := mustParse(t, doc(selectAll, tf(2, "column", "convert-uppercase", "%.%.%")))
	cols := []string{"a"}
	r.Map("s", "t", cols, "")
	if cols[0] != "a" {
		t.Errorf("Map modified its input: %q", cols)
	}
}

func TestConsoleExport(t *testing.T) {
	// A document as the DMS console exports it: numeric rule-ids, null
	// values, filters, table-settings and post-processing rules.
	r := mustParse(t, readTestdata(t, "console_export.json"))
	if !r.Selected("public", "customers") {
		t.Error("public.customers not selected")
	}
	if r.Selected("private", "customers") {
		t.Error("private.customers selected")
	}
	m := r.Map("public", "customers", []string{"id", "ssn"}, "")
	if m.TargetTable != "CUSTOMERS" {
		t.Errorf("TargetTable = %q, want CUSTOMERS", m.TargetTable)
	}
	if c, ok := m.Column("ssn"); !ok || !c.Removed {
		t.Errorf("Column(ssn) = %+v, %v; want removed", c, ok)
	}
	if c, ok := m.Column("id"); !ok || c.Removed || c.Target != "id" {
		t.Errorf("Column(id) = %+v, %v; want kept as id", c, ok)
	}
}

func TestColumn(t *testing.T) {
	m := TableMap{Columns: []ColumnMap{{Source: "a", Target: "A"}}}
	// Found by source name, not target name.
	if c, ok := m.Column("a"); !ok || c.Target != "A" {
		t.Errorf("Column(a) = %+v, %v", c, ok)
	}
	// Unknown columns report false so callers can detect schema drift.
	if _, ok := m.Column("A"); ok {
		t.Error("Column(A) found a column by its target name")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// field is the RuleError.Field expected, or "-" for document-level
		// errors that are not about one rule.
		field  string
		wantIn []string // substrings the message must contain
	}{
		{
			// Syntax errors report where the JSON breaks.
			name: "malformed JSON", field: "-",
			doc:    `{"rules": [`,
			wantIn: []string{"malformed JSON", "offset"},
		},
		{
			// A top-level array is valid JSON but not a document.
			name: "not an object", field: "-",
			doc:    `[]`,
			wantIn: []string{`JSON object with a "rules" array`},
		},
		{
			// The rules array is required.
			name: "no rules array", field: "-",
			doc:    `{"Rules": []}`,
			wantIn: []string{`no "rules" array`},
		},
		{
			// rules must be an array, not an object.
			name: "rules not an array", field: "-",
			doc:    `{"rules": {"rule-type": "selection"}}`,
			wantIn: []string{`"rules" must be an array`},
		},
		{
			// A rule that is not an object is named by index.
			name: "rule not an object", field: "",
			doc:    `{"rules": ["selection"]}`,
			wantIn: []string{"rules[0]", "must be a JSON object"},
		},
		{
			// rule-type must be a DMS rule type; the message lists them.
			name: "unknown rule-type", field: "rule-type",
			doc:    string(doc(selectAll, `{"rule-type":"filter","rule-id":"2","rule-name":"f"}`)),
			wantIn: []string{"rules[1]", `rule-id "2"`, `rule-name "f"`, `"filter"`, "selection, transformation, table-settings, post-processing"},
		},
		{
			// rule-type is required.
			name: "missing rule-type", field: "rule-type",
			doc:    string(doc(selectAll, `{"rule-id":"2","rule-name":"nt"}`)),
			wantIn: []string{"rules[1]", `rule-name "nt"`, "missing", "allowed: selection"},
		},
		{
			// Selection actions are include, exclude and explicit.
			name: "unknown selection rule-action", field: "rule-action",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"select"}]}`,
			wantIn: []string{"rules[0]", `rule-id "1"`, `"select"`, "include, exclude, explicit"},
		},
		{
			// Transformation actions sluice does not implement are rejected
			// rather than silently ignored.
			name: "unknown transformation rule-action", field: "rule-action",
			doc:    string(doc(selectAll, tf(2, "table", "add-column", "public.orders", "value", "x"))),
			wantIn: []string{"rules[1]", `rule-id "2"`, `"add-column"`, `rule-target "table"`, "rename", "replace-suffix"},
		},
		{
			// remove-column makes no sense for a table target.
			name: "remove-column on table", field: "rule-action",
			doc:    string(doc(selectAll, tf(2, "table", "remove-column", "public.orders"))),
			wantIn: []string{"rules[1]", `"remove-column"`, `rule-target "table"`},
		},
		{
			// Selection rules need an object-locator.
			name: "missing object-locator", field: "object-locator",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include"}]}`,
			wantIn: []string{"rules[0]", `rule-name "s"`, "object-locator", "missing", "schema-name and table-name"},
		},
		{
			// object-locator must be an object.
			name: "object-locator not an object", field: "object-locator",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include","object-locator":"public.%"}]}`,
			wantIn: []string{"rules[0]", "must be a JSON object"},
		},
		{
			// schema-name is required on selection rules.
			name: "missing schema-name", field: "object-locator.schema-name",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include","object-locator":{"table-name":"%"}}]}`,
			wantIn: []string{"rules[0]", "object-locator.schema-name", "missing", `"%"`},
		},
		{
			// table-name is required on selection rules.
			name: "missing table-name", field: "object-locator.table-name",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include","object-locator":{"schema-name":"public"}}]}`,
			wantIn: []string{"rules[0]", "object-locator.table-name", "missing"},
		},
		{
			// An empty name is as useless as a missing one.
			name: "empty table-name", field: "object-locator.table-name",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include","object-locator":{"schema-name":"public","table-name":""}}]}`,
			wantIn: []string{"rules[0]", "object-locator.table-name", "missing"},
		},
		{
			// table-name is required on table transformations.
			name: "table rule without table-name", field: "object-locator.table-name",
			doc:    string(doc(selectAll, tf(2, "table", "rename", "public", "value", "x"))),
			wantIn: []string{"rules[1]", `rule-id "2"`, "object-locator.table-name", "missing"},
		},
		{
			// Names must be strings, not numbers.
			name: "schema-name wrong type", field: "object-locator.schema-name",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"s","rule-action":"include","object-locator":{"schema-name":7,"table-name":"%"}}]}`,
			wantIn: []string{"rules[0]", "object-locator.schema-name", "must be a JSON string", "7"},
		},
		{
			// rule-target must be schema, table or column.
			name: "unknown rule-target", field: "rule-target",
			doc:    string(doc(selectAll, tf(2, "table-tablespace", "rename", "public.orders", "value", "x"))),
			wantIn: []string{"rules[1]", `rule-id "2"`, `"table-tablespace"`, "schema, table, column"},
		},
		{
			// rule-target is required on transformations.
			name: "missing rule-target", field: "rule-target",
			doc:    string(doc(selectAll, `{"rule-type":"transformation","rule-id":"2","rule-name":"t2","rule-action":"rename","value":"x","object-locator":{"schema-name":"%"}}`)),
			wantIn: []string{"rules[1]", "rule-target", "missing", "schema, table, column"},
		},
		{
			// rename needs the new name.
			name: "rename without value", field: "value",
			doc:    string(doc(selectAll, tf(2, "table", "rename", "public.orders"))),
			wantIn: []string{"rules[1]", `rule-id "2"`, `"rename"`, "new name"},
		},
		{
			// add-prefix with the console's null value is still missing.
			name: "add-prefix with null value", field: "value",
			doc:    string(doc(selectAll, `{"rule-type":"transformation","rule-id":"2","rule-name":"t2","rule-target":"schema","rule-action":"add-prefix","object-locator":{"schema-name":"%"},"value":null}`)),
			wantIn: []string{"rules[1]", `"add-prefix"`, "prefix"},
		},
		{
			// remove-suffix with an empty value would be a silent no-op.
			name: "remove-suffix with empty value", field: "value",
			doc:    string(doc(selectAll, tf(2, "table", "remove-suffix", "public.%", "value", ""))),
			wantIn: []string{"rules[1]", `"remove-suffix"`, "suffix"},
		},
		{
			// replace-prefix needs old-value to know what to replace.
			name: "replace-prefix without old-value", field: "old-value",
			doc:    string(doc(selectAll, tf(2, "table", "replace-prefix", "public.%", "value", "new_"))),
			wantIn: []string{"rules[1]", `"replace-prefix"`, "old-value"},
		},
		{
			// replace-suffix needs value stated, even if empty.
			name: "replace-suffix without value", field: "value",
			doc:    string(doc(selectAll, tf(2, "table", "replace-suffix", "public.%", "old-value", "_old"))),
			wantIn: []string{"rules[1]", `"replace-suffix"`, `use ""`},
		},
		{
			// value must be a string.
			name: "value wrong type", field: "value",
			doc:    string(doc(selectAll, `{"rule-type":"transformation","rule-id":"2","rule-name":"t2","rule-target":"schema","rule-action":"rename","object-locator":{"schema-name":"%"},"value":42}`)),
			wantIn: []string{"rules[1]", "value", "must be a JSON string"},
		},
		{
			// A column rule must say which column.
			name: "column rule without column-name", field: "object-locator.column-name",
			doc:    string(doc(selectAll, tf(2, "column", "rename", "public.orders", "value", "x"))),
			wantIn: []string{"rules[1]", `rule-id "2"`, "object-locator.column-name", "missing", "column-name"},
		},
		{
			// Without a selection rule nothing would replicate.
			name: "no selection rule", field: "-",
			doc:    string(doc(tf(2, "table", "rename", "public.orders", "value", "x"))),
			wantIn: []string{"no selection rule"},
		},
		{
			// Only table-settings is still no selection.
			name: "only ignored rule types", field: "-",
			doc:    `{"rules":[{"rule-type":"table-settings","rule-id":"1","rule-name":"ts"}]}`,
			wantIn: []string{"no selection rule"},
		},
		{
			// explicit names one table, so wildcards are refused.
			name: "explicit with wildcard", field: "object-locator.table-name",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"ex","object-locator":{"schema-name":"public","table-name":"ord%"},"rule-action":"explicit"}]}`,
			wantIn: []string{"rules[0]", `rule-name "ex"`, `"ord%"`, "explicit", "include"},
		},
		{
			// rule-id orders transformations, so it is required.
			name: "missing rule-id", field: "rule-id",
			doc:    `{"rules":[{"rule-type":"selection","rule-name":"s","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"include"}]}`,
			wantIn: []string{"rules[0]", `rule-name "s"`, "rule-id", "missing"},
		},
		{
			// rule-id must be numeric to define an order.
			name: "non-numeric rule-id", field: "rule-id",
			doc:    `{"rules":[{"rule-type":"selection","rule-id":"first","rule-name":"s","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"include"}]}`,
			wantIn: []string{"rules[0]", `rule-id "first"`, "non-negative integer"},
		},
		{
			// Duplicate rule-ids would make the order ambiguous.
			name: "duplicate rule-id", field: "rule-id",
			doc:    string(doc(selectAll, tf(1, "table", "rename", "public.orders", "value", "x"))),
			wantIn: []string{"rules[1]", `rule-id "1"`, "rules[0]", "unique"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error", r)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var re *RuleError
			switch isRule := errors.As(err, &re); {
			case tt.field == "-" && isRule:
				t.Errorf("got RuleError for a document-level problem: %v", err)
			case tt.field != "-" && !isRule:
				t.Errorf("got %T, want *RuleError: %v", err, err)
			case isRule && re.Field != tt.field:
				t.Errorf("Field = %q, want %q (%v)", re.Field, tt.field, err)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestParseAcceptsNumericAndStringRuleIDs(t *testing.T) {
	// DMS documents write rule-id both ways; both must parse and order
	// numerically against each other.
	d := `{"rules":[
		{"rule-type":"selection","rule-id":1,"rule-name":1,"object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"include"},
		{"rule-type":"transformation","rule-id":3,"rule-name":"3","rule-target":"table","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"add-prefix","value":"a_"},
		{"rule-type":"transformation","rule-id":"2","rule-name":"2","rule-target":"table","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"add-prefix","value":"b_"}
	]}`
	r := mustParse(t, []byte(d))
	if got := r.Map("s", "t", nil, "").TargetTable; got != "a_b_t" {
		t.Errorf("TargetTable = %q, want a_b_t", got)
	}
}
