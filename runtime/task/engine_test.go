package task

import (
	"strings"
	"testing"
)

// Every DMS engine name resolves to the family that speaks its protocol,
// and the endpoint rules follow from the family, not from a second list.
func TestEngineRegistry(t *testing.T) {
	families := map[string]string{
		"postgres": FamilyPostgres, "aurora-postgresql": FamilyPostgres,
		"mysql": FamilyMySQL, "mariadb": FamilyMySQL, "aurora": FamilyMySQL,
	}
	if got := EngineNames(); len(got) != len(families) {
		t.Fatalf("EngineNames() = %v, want the %d names of %v", got, len(families), families)
	}
	for name, family := range families {
		e, err := EngineOf(name)
		if err != nil {
			t.Fatalf("EngineOf(%q): %v", name, err)
		}
		if e.Family != family {
			t.Errorf("EngineOf(%q).Family = %q, want %q", name, e.Family, family)
		}
		if e.Names[name] == "" {
			t.Errorf("engine %q has no display name", name)
		}
		// A MySQL endpoint names no database; a PostgreSQL one must.
		ep := Endpoint{EngineName: name, ServerName: "db", Username: "u"}
		err = ep.validate()
		if family == FamilyPostgres && err == nil {
			t.Errorf("%s endpoint without DatabaseName validated", name)
		}
		if family == FamilyMySQL && err != nil {
			t.Errorf("%s endpoint without DatabaseName: %v", name, err)
		}
		if e.StartsAtTime != (family == FamilyMySQL) {
			t.Errorf("%s: StartsAtTime = %v", name, e.StartsAtTime)
		}
	}
	for _, bad := range []string{"", "oracle", "Postgres"} {
		_, err := EngineOf(bad)
		if err == nil || !strings.Contains(err.Error(), "aurora-postgresql") {
			t.Errorf("EngineOf(%q) = %v, want an error listing the engine names", bad, err)
		}
	}
}

// Build refuses a task whose engines it does not know before it connects
// anywhere, naming the endpoint.
func TestBuildRefusesUnknownEngine(t *testing.T) {
	tk := &Task{
		ReplicationConfigIdentifier: "r1", ReplicationType: "full-load",
		SourceEndpoint: Endpoint{EngineName: "oracle", ServerName: "db", Username: "u", DatabaseName: "d"},
		TargetEndpoint: Endpoint{EngineName: "postgres", ServerName: "db", Username: "u", DatabaseName: "d"},
		TableMappings:  []byte(`{"rules":[{"rule-type":"selection","rule-id":"1","rule-name":"1","object-locator":{"schema-name":"%","table-name":"%"},"rule-action":"include"}]}`),
	}
	_, _, err := Build(t.Context(), tk, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "SourceEndpoint") || !strings.Contains(err.Error(), `"oracle"`) {
		t.Fatalf("Build = %v, want SourceEndpoint's engine refused", err)
	}
}
