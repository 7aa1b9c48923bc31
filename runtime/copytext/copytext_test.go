package copytext_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/copytext"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/test/testenv"
)

func text(s string) runtime.Value { return runtime.Value{Kind: runtime.Text, Data: []byte(s)} }

var null = runtime.Value{Kind: runtime.Null}

// fields are values every test below writes and reads, each with why.
var fields = []struct {
	name string
	v    runtime.Value
	copy string // as Copy writes it
	load string // as LoadData writes it
}{
	// NULL and the empty string must stay apart.
	{"null", null, `\N`, `\N`},
	{"empty", text(""), "", ""},
	// The two letters \N are data, not NULL, once the backslash is escaped.
	{"backslash-N", text(`\N`), `\\N`, `\\N`},
	// A lone backslash, and one at the end of the field.
	{"backslashes", text(`a\b\`), `a\\b\\`, `a\\b\\`},
	// The field and row separators inside a value.
	{"tab-newline", text("a\tb\nc"), `a\tb\nc`, `a\tb\nc`},
	// A carriage return would be taken for a CRLF line end.
	{"carriage-return", text("a\r\nb"), `a\r\nb`, `a\r\nb`},
	// NUL: MySQL's writer escapes it as \0; PostgreSQL would read \0 as
	// the same NUL, which its text refuses, so Copy leaves it.
	{"nul", text("a\x00b"), "a\x00b", `a\0b`},
	// Only the four escapes are written: other control bytes pass.
	{"other-controls", text("\b\f\v\x1a"), "\b\f\v\x1a", "\b\f\v\x1a"},
	// Bytes are not decoded: invalid UTF-8 passes as it is.
	{"invalid-utf8", text("\xff\xfe\xc3("), "\xff\xfe\xc3(", "\xff\xfe\xc3("},
	// Valid multi-byte UTF-8 is not escaped either.
	{"utf8", text("zß水🙂"), "zß水🙂", "zß水🙂"},
}

func TestAppendField(t *testing.T) {
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			if got := string(copytext.Copy.AppendField(nil, f.v)); got != f.copy {
				t.Errorf("Copy = %q, want %q", got, f.copy)
			}
			if got := string(copytext.LoadData.AppendField(nil, f.v)); got != f.load {
				t.Errorf("LoadData = %q, want %q", got, f.load)
			}
		})
	}
}

func TestAppendFieldAppends(t *testing.T) {
	// Callers build a row in one buffer: what is there stays.
	got := copytext.Copy.AppendField([]byte("x\t"), text("a\tb"))
	if string(got) != `x	a\tb` {
		t.Errorf("got %q", got)
	}
	// An Unchanged value carries no data: it is written as NULL.
	if got := copytext.Copy.AppendField(nil, runtime.Value{Kind: runtime.Unchanged}); string(got) != `\N` {
		t.Errorf("Unchanged = %q, want \\N", got)
	}
}

func TestParseField(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want runtime.Value
	}{
		// \N alone is NULL; empty is the empty string.
		{"null", `\N`, null},
		{"empty", "", text("")},
		// \N within a field is no NULL: the escaped N stands for itself.
		{"N-inside", `a\N`, text("aN")},
		// PostgreSQL's writer emits these six escapes.
		{"escapes", `\b\f\n\r\t\v`, text("\b\f\n\r\t\v")},
		{"backslash", `a\\b`, text(`a\b`)},
		// An escaped byte with no meaning stands for itself.
		{"unknown-escape", `\q\0`, text("q0")},
		// A lone backslash at the end is kept, not dropped.
		{"trailing-backslash", `ab\`, text(`ab\`)},
		// NUL and invalid UTF-8 pass as bytes.
		{"nul-invalid-utf8", "a\x00\xff", text("a\x00\xff")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := copytext.ParseField(c.in)
			if got.Kind != c.want.Kind || !bytes.Equal(got.Data, c.want.Data) {
				t.Errorf("ParseField(%q) = %v %q, want %v %q", c.in, got.Kind, got.Data, c.want.Kind, c.want.Data)
			}
		})
	}
}

func TestCopyRoundTrip(t *testing.T) {
	// What Copy writes, ParseField reads back: the MySQL target reads the
	// MySQL source's rows this way.
	for _, f := range fields {
		got := copytext.ParseField(string(copytext.Copy.AppendField(nil, f.v)))
		if got.Kind != f.v.Kind || !bytes.Equal(got.Data, f.v.Data) {
			t.Errorf("%s: read back %v %q, want %v %q", f.name, got.Kind, got.Data, f.v.Kind, f.v.Data)
		}
	}
}

// pgFields are the fields PostgreSQL text can hold: no NUL, valid UTF-8.
func pgFields() (out []runtime.Value) {
	for _, f := range fields {
		if f.name != "nul" && f.name != "invalid-utf8" {
			out = append(out, f.v)
		}
	}
	return out
}

func TestCopyWithPostgreSQL(t *testing.T) {
	// PostgreSQL reads what Copy writes as the values written, and what it
	// writes itself ParseField reads back the same.
	ctx := context.Background()
	conn := testenv.Connect(t, "postgres")
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE copytext (i int, v text)"); err != nil {
		t.Fatal(err)
	}
	want := pgFields()
	var in []byte
	for i, v := range want {
		in = fmt.Appendf(in, "%d\t", i)
		in = append(copytext.Copy.AppendField(in, v), '\n')
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(in), "COPY copytext FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &out, "COPY (SELECT v FROM copytext ORDER BY i) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("PostgreSQL wrote %d rows, want %d: %q", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		got := copytext.ParseField(l)
		if got.Kind != want[i].Kind || !bytes.Equal(got.Data, want[i].Data) {
			t.Errorf("row %d: %q read back as %v %q, want %v %q", i, l, got.Kind, got.Data, want[i].Kind, want[i].Data)
		}
	}
}

func TestLoadDataWithMariaDB(t *testing.T) {
	// MariaDB's LOAD DATA, as the MySQL target issues it, reads what
	// LoadData writes as the values written, NUL and invalid UTF-8 too.
	db := testenv.NewMySQLDatabase(t, "copytext")
	port, _ := strconv.Atoi(testenv.MySQLPort)
	srv := mysqlconn.Server{Host: testenv.MySQLHost, Port: port, User: testenv.MySQLUser, Password: os.Getenv("SLUICE_TEST_MYSQL_PASSWORD")}
	conn, err := mysqlconn.Connect(context.Background(), srv, 10*time.Second,
		func(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_LOCAL_FILES) })
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.UseDB(db); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Execute("SELECT @@local_infile")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.GetInt(0, 0); n != 1 {
		t.Fatalf("MariaDB has local_infile off: run `make services` (as root) first")
	}
	if _, err := conn.Execute("CREATE TABLE t (i int PRIMARY KEY, v longblob)"); err != nil {
		t.Fatal(err)
	}
	var in []byte
	for i, f := range fields {
		in = fmt.Appendf(in, "%d\t", i)
		in = append(copytext.LoadData.AppendField(in, f.v), '\n')
	}
	q := "LOAD DATA LOCAL INFILE 'sluice' INTO TABLE t CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (i, v)"
	if _, err := conn.ExecQueryRelayLocalInfile(q, func([]byte) (io.Reader, error) { return bytes.NewReader(in), nil }); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Execute("SELECT i, v, v IS NULL FROM t ORDER BY i")
	if err != nil {
		t.Fatal(err)
	}
	if res.RowNumber() != len(fields) {
		t.Fatalf("MariaDB read %d rows, want %d", res.RowNumber(), len(fields))
	}
	for i, f := range fields {
		isNull, _ := res.GetInt(i, 2)
		got, _ := res.GetString(i, 1)
		if (isNull == 1) != (f.v.Kind == runtime.Null) || got != string(f.v.Data) {
			t.Errorf("%s: MariaDB read %q (NULL %v), want %q (NULL %v)", f.name, got, isNull == 1, f.v.Data, f.v.Kind == runtime.Null)
		}
	}
}
