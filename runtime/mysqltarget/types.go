package mysqltarget

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
)

// kind is how a value is written into a MySQL statement.
type kind uint8

const (
	kString kind = iota // quoted and escaped
	kNumber             // as it is, after a check that it is a number
	kBinary             // PostgreSQL bytea text (\x…) as a hex literal
	kBool               // t/f as 1/0
	kBits               // bit(n) text (0101) as a number
	kTime               // a timestamp: its UTC offset dropped (sessions are UTC)
)

// column is a target column: its declaration and how values are written.
type column struct {
	decl string
	kind kind
}

var typmod = regexp.MustCompile(`^([a-z ]+?)(?:\((\d+)(?:,\s*(\d+))?\))?(\[\])?$`)

// The type map for a PostgreSQL source, PostgreSQL → MySQL/MariaDB. Each
// target type holds every value of the source type exactly; a MySQL or
// MariaDB source's own declaration is used as it is.
//
//	smallint, integer, bigint        smallint, int, bigint
//	numeric(p,s)                     decimal(p,s)
//	numeric                          decimal(65,30)  (values beyond it are refused by MySQL)
//	real, double precision           float, double
//	boolean                          tinyint(1)
//	char(n), varchar(n), text        char(n), varchar(n), longtext (utf8mb4)
//	bytea                            longblob
//	date                             date
//	timestamp(p), timestamptz(p)     datetime(p)  (timestamptz in UTC)
//	time(p)                          time(p)
//	uuid                             char(36)
//	json, jsonb                      json
//	bit(n), bit varying(n)           bit(n)
//
// Anything else (arrays, intervals, ranges, geometric and network types,
// user-defined types) is refused by column name.
func targetColumn(t *runtime.Table, c runtime.Column) (column, error) {
	if c.MySQLType != "" {
		return column{decl: c.MySQLType, kind: mysqlKind(c.MySQLType)}, nil
	}
	typ := strings.ToLower(strings.TrimSpace(c.Type))
	// format_type puts the precision before the zone: timestamp(6) with
	// time zone.
	typ, withZone := strings.CutSuffix(typ, " with time zone")
	typ = strings.TrimSuffix(typ, " without time zone")
	m := typmod.FindStringSubmatch(typ)
	if m == nil || m[4] != "" || (withZone && !strings.HasPrefix(typ, "timestamp")) {
		return column{}, unmappable(t, c)
	}
	base, n, s := m[1], m[2], m[3]
	withP := func(name string) string {
		if n == "" {
			return name
		}
		return name + "(" + n + ")"
	}
	switch base {
	case "smallint":
		return column{"smallint", kNumber}, nil
	case "integer", "int":
		return column{"int", kNumber}, nil
	case "bigint":
		return column{"bigint", kNumber}, nil
	case "numeric", "decimal":
		if n == "" {
			return column{"decimal(65,30)", kNumber}, nil
		}
		if s == "" {
			s = "0"
		}
		return column{"decimal(" + n + "," + s + ")", kNumber}, nil
	case "real":
		return column{"float", kNumber}, nil
	case "double precision":
		return column{"double", kNumber}, nil
	case "boolean":
		return column{"tinyint(1)", kBool}, nil
	case "character", "char":
		if n == "" {
			n = "1"
		}
		return column{"char(" + n + ") CHARACTER SET utf8mb4", kString}, nil
	case "character varying", "varchar":
		if n == "" {
			return column{"longtext CHARACTER SET utf8mb4", kString}, nil
		}
		return column{"varchar(" + n + ") CHARACTER SET utf8mb4", kString}, nil
	case "text":
		return column{"longtext CHARACTER SET utf8mb4", kString}, nil
	case "bytea":
		return column{"longblob", kBinary}, nil
	case "date":
		return column{"date", kString}, nil
	case "timestamp", "timestamp without time zone", "timestamptz", "timestamp with time zone":
		if n == "" {
			n = "6"
		}
		return column{"datetime(" + n + ")", kTime}, nil
	case "time", "time without time zone":
		if n == "" {
			n = "6"
		}
		return column{"time(" + n + ")", kString}, nil
	case "uuid":
		return column{"char(36)", kString}, nil
	case "json", "jsonb":
		return column{"json", kString}, nil
	case "bit", "bit varying":
		return column{withP("bit"), kBits}, nil
	}
	return column{}, unmappable(t, c)
}

func unmappable(t *runtime.Table, c runtime.Column) error {
	return fmt.Errorf("column %s of %s has type %s, which Sluice cannot map to MySQL yet: remove the column with a remove-column rule, or use a PostgreSQL target", c.SourceName, t.QualifiedSource(), c.Type)
}

// mysqlKind is how values of a MySQL source's column are written back.
func mysqlKind(decl string) kind {
	d := strings.ToLower(decl)
	switch {
	case strings.HasPrefix(d, "bit"):
		return kBits
	case strings.Contains(d, "blob") || strings.HasPrefix(d, "binary") || strings.HasPrefix(d, "varbinary"):
		return kBinary
	case strings.HasPrefix(d, "timestamp"):
		return kTime
	case strings.HasPrefix(d, "tinyint"), strings.HasPrefix(d, "smallint"), strings.HasPrefix(d, "mediumint"),
		strings.HasPrefix(d, "int"), strings.HasPrefix(d, "bigint"), strings.HasPrefix(d, "decimal"),
		strings.HasPrefix(d, "float"), strings.HasPrefix(d, "double"), strings.HasPrefix(d, "year"):
		return kNumber
	}
	return kString
}

var number = regexp.MustCompile(`^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)

// mysqlValue turns a value, in the text form the change stream carries,
// into its MySQL form for column c: a number's digits, 1 or 0, a bit
// string's number, the bytes of a bytea, a time without its UTC offset.
func mysqlValue(c column, v []byte) ([]byte, error) {
	s := string(v)
	switch c.kind {
	case kNumber:
		if !number.MatchString(s) {
			return nil, fmt.Errorf("value %q does not fit a MySQL %s column (NaN and infinities have no MySQL form)", clip(s), c.decl)
		}
	case kBool:
		switch s {
		case "t", "true", "1":
			return []byte("1"), nil
		case "f", "false", "0":
			return []byte("0"), nil
		}
		return nil, fmt.Errorf("value %q is not a boolean", clip(s))
	case kBits:
		if s == "" {
			return []byte("0"), nil
		}
		n, err := strconv.ParseUint(s, 2, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q is not a bit string of at most 64 bits", clip(s))
		}
		return []byte(strconv.FormatUint(n, 10)), nil
	case kBinary:
		h, ok := strings.CutPrefix(s, `\x`)
		b, err := hex.DecodeString(h)
		if !ok || err != nil {
			return nil, fmt.Errorf("value %q is not bytea text", clip(s))
		}
		return b, nil
	case kTime:
		if strings.HasPrefix(s, "infinity") || strings.HasPrefix(s, "-infinity") || strings.HasSuffix(s, " BC") {
			return nil, fmt.Errorf("value %q has no MySQL form (MySQL stores years 1000 to 9999)", s)
		}
		return []byte(strings.TrimSuffix(strings.TrimSuffix(s, "+00:00"), "+00")), nil
	}
	return v, nil
}

// literal writes a value, in the text form the change stream carries, as
// a MySQL literal for column c.
func literal(b *strings.Builder, c column, v runtime.Value) error {
	if v.Kind == runtime.Null {
		b.WriteString("NULL")
		return nil
	}
	m, err := mysqlValue(c, v.Data)
	if err != nil {
		return err
	}
	switch c.kind {
	case kNumber, kBool, kBits:
		b.Write(m)
	case kBinary:
		if len(m) == 0 {
			b.WriteString("''")
			return nil
		}
		b.WriteString("X'" + hex.EncodeToString(m) + "'")
	default:
		mysqlconn.WriteLiteral(b, string(m))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
