package pgtext_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime/pgtext"
	"github.com/sluicedb/sluice/test/testenv"
)

func TestIdent(t *testing.T) {
	cases := []struct {
		name  string
		parts []string
		want  string
	}{
		// A plain name is quoted all the same: it keeps its case.
		{"plain", []string{"Orders"}, `"Orders"`},
		// Each part is quoted alone and joined with a dot.
		{"qualified", []string{"public", "t"}, `"public"."t"`},
		// A dot inside a part is part of the name.
		{"dot-inside", []string{"a.b"}, `"a.b"`},
		// A double quote is doubled, as SQL escapes it in a name.
		{"double-quote", []string{`say "hi"`}, `"say ""hi"""`},
		// A single quote and a backslash need nothing in a name.
		{"quote-backslash", []string{`o'k\`}, `"o'k\"`},
		// NUL is dropped: no name holds one.
		{"nul", []string{"a\x00b"}, `"ab"`},
		// The empty name quotes to "", which PostgreSQL refuses by name.
		{"empty", []string{""}, `""`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pgtext.Ident(c.parts...); got != c.want {
				t.Errorf("Ident(%q) = %s, want %s", c.parts, got, c.want)
			}
		})
	}
}

// literals are strings a literal must carry unchanged, each with why.
var literals = []struct {
	name, in, want string
}{
	// The empty string is '' (no NULL in sight).
	{"empty", "", `''`},
	// A single quote is doubled.
	{"quote", "it's", `'it''s'`},
	// A backslash stands for itself with standard_conforming_strings on.
	{"backslash", `a\'b\`, `'a\''b\'`},
	// A double quote, tab and newline need nothing.
	{"others", "\"\t\n", "'\"\t\n'"},
	// Multi-byte UTF-8 passes unchanged.
	{"utf8", "ß水🙂", "'ß水🙂'"},
}

func TestLiteral(t *testing.T) {
	for _, c := range literals {
		t.Run(c.name, func(t *testing.T) {
			if got := pgtext.Literal(c.in); got != c.want {
				t.Errorf("Literal(%q) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestQuotingWithPostgreSQL(t *testing.T) {
	// PostgreSQL reads each literal and name back as written, in a session
	// with SessionParams on a database whose default would break literals.
	ctx := context.Background()
	db := testenv.NewPGDatabase(t, "pgtext")
	admin := testenv.Connect(t, "postgres")
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgtext.Ident(db)+" SET standard_conforming_strings = off"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(testenv.PGURL(db))
	if err != nil {
		t.Fatal(err)
	}
	pgtext.Apply(cfg.RuntimeParams)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range literals {
		// As the target sends its DDL: a simple query, the literal in it.
		q := "SELECT " + pgtext.Literal(c.in)
		res, err := conn.PgConn().Exec(ctx, q).ReadAll()
		if err != nil {
			t.Errorf("%s: %s: %v", c.name, q, err)
		} else if got := string(res[0].Rows[0][0]); got != c.in {
			t.Errorf("%s: %s = %q, want %q", c.name, q, got, c.in)
		}
	}
	for _, name := range []string{"Orders", "a.b", `say "hi"`, `o'k\`} {
		if _, err := conn.Exec(ctx, "CREATE TABLE "+pgtext.Ident("public", name)+" ()"); err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT relname FROM pg_class WHERE oid = $1::regclass", pgtext.Ident("public", name)).Scan(&got); err != nil || got != name {
			t.Errorf("table %q reads back as %q (%v)", name, got, err)
		}
	}
}
