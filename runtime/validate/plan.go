package validate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// family is a kind of value whose canonical text each engine can print.
type family uint8

const (
	fNative    family = iota // same engine on both sides: the type's own text
	fInt                     // integers, year
	fDecimal                 // exact numerics
	fFloat4                  // single precision: normalised in Go
	fFloat8                  // double precision: normalised in Go
	fText                    // character strings, enum, set
	fBytes                   // binary strings, as lower-case hex
	fDate                    // YYYY-MM-DD
	fDateTime                // YYYY-MM-DD HH:MM:SS.ffffff
	fTimestamp               // the same, in UTC
	fTime                    // MySQL time ↔ PostgreSQL interval: normalised in Go
	fBit                     // bit strings, as 0s and 1s
	fJSON                    // normalised in Go
)

// col is one compared column: how each side prints it.
type col struct {
	name     string // source name, for messages and failure details
	src, tgt string // canonical text expressions
	// norm, when set, normalises a fetched value in Go: the column has no
	// canonical SQL form.
	norm func([]byte) ([]byte, error)
	// srcOrd and tgtOrd are what a key column is ordered and bounded by;
	// lit makes a literal of a canonical value on each side.
	srcOrd, tgtOrd string
	srcLit, tgtLit func(string) string
	// tracked says the change stream carries the key value in its
	// canonical text, so runtime.Touched knows the row by it.
	tracked bool
}

// plan is how one table is compared.
type plan struct {
	t                  *runtime.Table
	name               string // schema.table on the source
	src, tgt           dialect
	srcTable, tgtTable string // quoted
	key, cols          []col
	// client says some column is normalised in Go: ranges are summed in
	// Go on both sides.
	client bool
	// tracked says every key column is tracked.
	tracked bool
	// native says both sides are PostgreSQL and print every column by its
	// own output function: a range is summed over each row's text as one
	// record, with the server's 64-bit text hash, several times faster
	// than the per-column MD5 two engines need.
	native bool
	// typed says, of a native plan, that every column's type has a hash
	// under which equal values are the same value: a row is hashed from
	// its typed values (hash_record_extended), about twice as fast as
	// from its text.
	typed   bool
	skipped []string // columns left out by SkipLobColumns
}

// keyless says the table has no key: it is compared as a multiset of rows.
func (p *plan) keyless() bool { return len(p.key) == 0 }

// planError is a table that cannot be compared, with the reason.
type planError struct{ msg string }

func (e *planError) Error() string { return e.msg }

var typeName = regexp.MustCompile(`^[a-z ]+`)

// newPlan works out how table t is compared between a source speaking
// srcDialect and a target speaking tgtDialect.
func newPlan(t *runtime.Table, srcDialect, tgtDialect string, opts runtime.ValidationSettings, zeroDateAsNull bool) (*plan, error) {
	p := &plan{t: t, name: t.QualifiedSource(), src: dialectOf(srcDialect), tgt: dialectOf(tgtDialect)}
	p.srcTable = p.src.quote(t.SourceSchema, t.SourceName)
	p.tgtTable = p.tgt.quote(t.Schema, t.Name)
	if srcDialect == runtime.DialectPostgres && tgtDialect == runtime.DialectMySQL {
		return nil, &planError{"validation of a PostgreSQL source against a MySQL target is not supported yet: turn EnableValidation off for this replication"}
	}
	same := srcDialect == tgtDialect
	inKey := map[int]bool{}
	for _, i := range t.Key {
		inKey[i] = true
	}
	p.tracked = len(t.Key) > 0
	for _, i := range t.Key {
		c := t.Columns[i]
		if c.Removed {
			return nil, &planError{fmt.Sprintf("key column %s is removed by a transformation: rows cannot be matched by key", c.SourceName)}
		}
		k, err := p.column(c, same, zeroDateAsNull)
		if err != nil {
			return nil, err
		}
		if err := p.keyColumn(&k, c, same, opts.HandleCollationDiff); err != nil {
			return nil, err
		}
		p.tracked = p.tracked && k.tracked
		p.key = append(p.key, k)
	}
	for _, i := range t.Copied() {
		if inKey[i] {
			continue
		}
		c := t.Columns[i]
		if opts.SkipLobColumns && isLob(c) {
			p.skipped = append(p.skipped, c.SourceName)
			continue
		}
		k, err := p.column(c, same, zeroDateAsNull)
		if err != nil {
			return nil, err
		}
		p.cols = append(p.cols, k)
	}
	for _, c := range append(append([]col(nil), p.key...), p.cols...) {
		p.client = p.client || c.norm != nil
	}
	p.native = same && srcDialect == runtime.DialectPostgres
	p.typed = p.native
	for _, i := range t.Copied() {
		if c := t.Columns[i]; !(opts.SkipLobColumns && isLob(c)) && !typedHash(c.Type) {
			p.typed = false
		}
	}
	return p, nil
}

// typedHash says whether a PostgreSQL type's hash tells its values apart
// exactly as their text does: not floats (0 and -0 hash alike), intervals
// (1 day and 24 hours), unconstrained numerics (1.0 and 1.00), arrays or
// types without a hash.
func typedHash(t string) bool {
	t = strings.ToLower(t)
	if strings.Contains(t, "[]") {
		return false
	}
	switch baseType(t) {
	case "smallint", "integer", "bigint", "text", "character varying", "character", "bytea", "boolean",
		"date", "timestamp", "uuid":
		return true
	case "numeric":
		return strings.Contains(t, ",")
	}
	return false
}

// baseType is the type name without its modifiers: "varchar" of
// "varchar(20)", "int" of "int(10) unsigned", "timestamp with time zone".
func baseType(s string) string {
	return strings.TrimSpace(typeName.FindString(strings.ToLower(s)))
}

func isLob(c runtime.Column) bool {
	switch baseType(c.MySQLType) {
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json":
		return true
	}
	switch baseType(c.Type) {
	case "text", "bytea", "json", "jsonb", "xml":
		return true
	}
	return false
}

// column is how column c is printed on both sides.
func (p *plan) column(c runtime.Column, same, zeroDateAsNull bool) (col, error) {
	src := p.src.quote(c.SourceName)
	tgt := p.tgt.quote(c.Name)
	k := col{name: c.SourceName}
	f, err := p.family(c, same)
	if err != nil {
		return k, err
	}
	k.src, k.norm = p.src.text(f, src, c)
	k.tgt, _ = p.tgt.text(f, tgt, c)
	if same {
		// One engine prints one value one way on both sides.
		k.norm = nil
	}
	if zeroDateAsNull && c.MySQLType != "" && !same {
		// The target holds NULL where the source has a zero date.
		switch f {
		case fDate:
			k.src = "NULLIF(" + k.src + ", '0000-00-00')"
		case fDateTime, fTimestamp:
			k.src = "NULLIF(" + k.src + ", '0000-00-00 00:00:00.000000')"
		}
	}
	return k, nil
}

// family classifies a column for the pair of engines.
func (p *plan) family(c runtime.Column, same bool) (family, error) {
	if c.MySQLType == "" {
		// A PostgreSQL source: with a PostgreSQL target every type
		// prints itself alike (the sessions pin the settings output
		// depends on).
		return fNative, nil
	}
	base := baseType(c.MySQLType)
	if same {
		switch base {
		case "float", "double", "real":
			return fFloat8, nil
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			return fBytes, nil
		case "bit":
			return fBit, nil
		}
		return fNative, nil
	}
	switch base {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		return fInt, nil
	case "decimal", "numeric":
		return fDecimal, nil
	case "float":
		return fFloat4, nil
	case "double", "real":
		return fFloat8, nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return fText, nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return fBytes, nil
	case "date":
		return fDate, nil
	case "datetime":
		return fDateTime, nil
	case "timestamp":
		return fTimestamp, nil
	case "time":
		return fTime, nil
	case "bit":
		return fBit, nil
	case "json":
		return fJSON, nil
	}
	return 0, &planError{fmt.Sprintf("column %s of type %s cannot be compared with its %s: Sluice has no canonical form for it", c.SourceName, c.MySQLType, c.Type)}
}

// keyColumn sets how a key column orders ranges and makes literals.
func (p *plan) keyColumn(k *col, c runtime.Column, same, collationDiff bool) error {
	src := p.src.quote(c.SourceName)
	tgt := p.tgt.quote(c.Name)
	f, _ := p.family(c, same)
	k.srcOrd, k.tgtOrd = src, tgt
	k.srcLit, k.tgtLit = p.src.literal, p.tgt.literal
	base := baseType(c.Type)
	if c.MySQLType != "" {
		base = baseType(c.MySQLType)
	}
	switch f {
	case fInt, fDecimal:
		k.srcLit, k.tgtLit = number, number
		k.tracked = f == fInt
	case fText:
		// Two engines order text by different collations: both order it
		// by its bytes.
		k.srcOrd, k.tgtOrd = p.src.binaryText(src), p.tgt.binaryText(tgt)
		k.tracked = true
	case fBytes:
		k.srcLit, k.tgtLit = p.src.hexLiteral, p.tgt.hexLiteral
	case fDate, fDateTime, fTimestamp:
	case fNative:
		switch base {
		case "smallint", "integer", "bigint", "tinyint", "mediumint", "int":
			k.tracked = true
		case "numeric", "decimal":
		case "text", "character varying", "varchar", "char", "uuid":
			k.tracked = base != "char"
			if collationDiff {
				k.srcOrd, k.tgtOrd = p.src.binaryText(src), p.tgt.binaryText(tgt)
			}
		}
	default:
		return &planError{fmt.Sprintf("key column %s of type %s cannot bound key ranges: Sluice compares tables keyed by numbers, text, binary strings and dates", c.SourceName, c.Type)}
	}
	return nil
}

// number is the literal of a canonical number: the text itself, checked.
func number(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '-' && c != '.' {
			return "NULL" // never a key value; the range comes out empty and differs
		}
	}
	return s
}

// dialect is the SQL of one engine.
type dialect interface {
	quote(parts ...string) string
	literal(s string) string
	hexLiteral(s string) string
	binaryText(expr string) string
	// text is the canonical text expression of a column of family f,
	// and the Go normalisation of what it returns, if it needs one.
	text(f family, expr string, c runtime.Column) (string, func([]byte) ([]byte, error))
	// part is the self-delimiting text of one canonical value:
	// N for NULL, else V<bytes>:<text>.
	part(expr string) string
	// concat joins texts; sum60 sums the first 60 bits of the MD5 of a
	// text over the rows, exactly.
	concat(parts []string) string
	sum60(text string) string
}

func dialectOf(name string) dialect {
	if name == runtime.DialectMySQL {
		return mysqlDialect{}
	}
	return pgDialect{}
}

type pgDialect struct{}

func (pgDialect) quote(parts ...string) string { return pgtext.Ident(parts...) }
func (pgDialect) literal(s string) string      { return pgtext.Literal(s) }
func (pgDialect) hexLiteral(s string) string   { return "decode(" + pgtext.Literal(s) + ", 'hex')" }
func (pgDialect) binaryText(e string) string   { return "(" + e + ` COLLATE "C")` }
func (pgDialect) part(e string) string {
	return "coalesce('V' || octet_length(" + e + ") || ':' || " + e + ", 'N')"
}
func (pgDialect) concat(parts []string) string { return "(" + strings.Join(parts, " || ") + ")" }
func (pgDialect) sum60(t string) string {
	return "coalesce(sum(('x' || substr(md5(" + t + "), 1, 15))::bit(60)::bigint), 0)"
}

func (pgDialect) text(f family, e string, c runtime.Column) (string, func([]byte) ([]byte, error)) {
	switch f {
	case fFloat4:
		return e + "::text", normFloat(32)
	case fFloat8:
		return e + "::text", normFloat(64)
	case fBytes:
		return "encode(" + e + ", 'hex')", nil
	case fDate:
		return "to_char(" + e + ", 'YYYY-MM-DD')", nil
	case fDateTime:
		return "to_char(" + e + ", 'YYYY-MM-DD HH24:MI:SS.US')", nil
	case fTimestamp:
		return "to_char(" + e + " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", nil
	case fTime:
		return e + "::text", normDuration
	case fJSON:
		return e + "::text", normJSON
	}
	return e + "::text", nil
}

type mysqlDialect struct{}

func (mysqlDialect) quote(parts ...string) string { return mysqlconn.Quote(parts...) }
func (mysqlDialect) literal(s string) string {
	var b strings.Builder
	mysqlconn.WriteLiteral(&b, s)
	return b.String()
}
func (d mysqlDialect) hexLiteral(s string) string { return "UNHEX(" + d.literal(s) + ")" }
func (mysqlDialect) binaryText(e string) string {
	return "(CONVERT(" + e + " USING utf8mb4) COLLATE utf8mb4_bin)"
}
func (mysqlDialect) part(e string) string {
	return "COALESCE(CONCAT('V', LENGTH(" + e + "), ':', " + e + "), 'N')"
}
func (mysqlDialect) concat(parts []string) string { return "CONCAT(" + strings.Join(parts, ", ") + ")" }
func (mysqlDialect) sum60(t string) string {
	return "COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(" + t + "), 1, 15), 16, 10) AS UNSIGNED)), 0)"
}

func (mysqlDialect) text(f family, e string, c runtime.Column) (string, func([]byte) ([]byte, error)) {
	switch f {
	case fFloat4:
		return "CAST(CAST(" + e + " AS DOUBLE) AS CHAR)", normFloat(32)
	case fFloat8:
		return "CAST(CAST(" + e + " AS DOUBLE) AS CHAR)", normFloat(64)
	case fBytes:
		return "LOWER(HEX(" + e + "))", nil
	case fDateTime, fTimestamp:
		return "DATE_FORMAT(" + e + ", '%Y-%m-%d %H:%i:%s.%f')", nil
	case fTime:
		return "CAST(" + e + " AS CHAR)", normDuration
	case fBit:
		if n := bitWidth(c.MySQLType); n > 0 {
			return fmt.Sprintf("LPAD(BIN(%s), %d, '0')", e, n), nil
		}
		return "BIN(" + e + ")", nil
	case fJSON:
		return "CAST(" + e + " AS CHAR)", normJSON
	}
	return "CAST(" + e + " AS CHAR)", nil
}

var bitArg = regexp.MustCompile(`^bit\((\d+)\)`)

func bitWidth(t string) int {
	m := bitArg.FindStringSubmatch(strings.ToLower(t))
	if m == nil {
		return 1
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}
