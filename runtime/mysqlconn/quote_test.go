package mysqlconn_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/test/testenv"
)

// names are identifiers Quote must carry unchanged, each with why.
var names = []struct {
	name  string
	parts []string
	want  string
}{
	// A plain name is quoted all the same: a reserved word would need it.
	{"plain", []string{"order"}, "`order`"},
	// Each part is quoted alone and joined with a dot.
	{"qualified", []string{"db", "t"}, "`db`.`t`"},
	// A dot inside a part is part of the name.
	{"dot-inside", []string{"a.b"}, "`a.b`"},
	// A backtick is doubled, as MySQL escapes it in a name.
	{"backtick", []string{"a`b"}, "`a``b`"},
	// Quotes and backslashes need nothing inside backticks.
	{"quotes-backslash", []string{`o'k"\`}, "`o'k\"\\`"},
	// Multi-byte UTF-8 passes unchanged.
	{"utf8", []string{"zß水"}, "`zß水`"},
}

func TestQuote(t *testing.T) {
	for _, c := range names {
		t.Run(c.name, func(t *testing.T) {
			if got := mysqlconn.Quote(c.parts...); got != c.want {
				t.Errorf("Quote(%q) = %s, want %s", c.parts, got, c.want)
			}
		})
	}
}

// literals are strings WriteLiteral must carry unchanged, each with why.
var literals = []struct {
	name, in, want string
}{
	// The empty string is '' (no NULL in sight).
	{"empty", "", `''`},
	// A single quote and a backslash are backslash-escaped.
	{"quote-backslash", `it's \`, `'it\'s \\'`},
	// NUL, LF, CR and Ctrl-Z are escaped so the statement stays printable.
	{"controls", "a\x00b\nc\rd\x1a", `'a\0b\nc\rd\Z'`},
	// A tab and a double quote need nothing.
	{"tab-double-quote", "a\t\"", "'a\t\"'"},
	// Bytes are not decoded: invalid UTF-8 passes as it is.
	{"invalid-utf8", "\xff\xfe", "'\xff\xfe'"},
	// Multi-byte UTF-8 passes unchanged.
	{"utf8", "ß水🙂", "'ß水🙂'"},
}

func TestWriteLiteral(t *testing.T) {
	for _, c := range literals {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("x")
			mysqlconn.WriteLiteral(&b, c.in)
			if got := b.String(); got != "x"+c.want {
				t.Errorf("WriteLiteral(%q) wrote %s, want %s after what was there", c.in, got, c.want)
			}
		})
	}
}

func TestQuotingWithMariaDB(t *testing.T) {
	// MariaDB reads each literal and name back as written, in a session
	// that Connect opens.
	db := testenv.NewMySQLDatabase(t, "mysqlconn")
	port, _ := strconv.Atoi(testenv.MySQLPort)
	srv := mysqlconn.Server{Host: testenv.MySQLHost, Port: port, User: testenv.MySQLUser, Password: os.Getenv("SLUICE_TEST_MYSQL_PASSWORD")}
	conn, err := mysqlconn.Connect(context.Background(), srv, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range literals {
		var b strings.Builder
		b.WriteString("SELECT CAST(")
		mysqlconn.WriteLiteral(&b, c.in)
		b.WriteString(" AS BINARY)")
		r, err := conn.Execute(b.String())
		if err != nil {
			t.Errorf("%s: %s: %v", c.name, b.String(), err)
			continue
		}
		if got, _ := r.GetString(0, 0); got != c.in {
			t.Errorf("%s: %s = %q, want %q", c.name, b.String(), got, c.in)
		}
	}
	for _, c := range names {
		if len(c.parts) != 1 {
			continue
		}
		if _, err := conn.Execute("CREATE TABLE " + mysqlconn.Quote(db, c.parts[0]) + " (i int)"); err != nil {
			t.Fatalf("%s: create %q: %v", c.name, c.parts[0], err)
		}
		r, err := conn.Execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, c.parts[0])
		if err != nil {
			t.Fatal(err)
		}
		if r.RowNumber() != 1 {
			t.Errorf("%s: table %q not found by its name", c.name, c.parts[0])
		}
	}
}
