package mysqlsource

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/runtime"
)

// column is a source column as information_schema describes it.
type column struct {
	name       string
	dataType   string // DATA_TYPE, lower case: int, varchar, …
	columnType string // COLUMN_TYPE: int(10) unsigned, enum('a','b'), …
	unsigned   bool
	precision  int64 // NUMERIC_PRECISION, or the bits of bit(n)
	scale      int64
	fraction   int64 // DATETIME_PRECISION
	length     int64 // CHARACTER_MAXIMUM_LENGTH (characters, or bytes when binary)
	charset    string
	nullable   bool
	labels     []string // the members of an enum or set
}

// The type map, MySQL/MariaDB → PostgreSQL. Each target type holds every
// value of the source type exactly; the README carries the same table.
//
//	tinyint, tinyint unsigned, tinyint(1)  smallint
//	smallint                               smallint
//	smallint unsigned, mediumint (±)       integer
//	int                                    integer
//	int unsigned                           bigint
//	bigint                                 bigint
//	bigint unsigned                        numeric(20)
//	decimal(p,s)                           numeric(p,s)
//	float                                  real
//	double                                 double precision
//	bit(n)                                 bit(n)
//	char(n), varchar(n)                    varchar(n)   (MySQL strips char's padding)
//	tinytext … longtext                    text
//	binary, varbinary, tinyblob … longblob bytea
//	date                                   date
//	datetime(p)                            timestamp(p)
//	timestamp(p)                           timestamptz(p)
//	time(p)                                interval     (−838:59:59 to 838:59:59)
//	year                                   smallint
//	enum(…), set(…)                        text
//	json                                   json         (MySQL's normalized text)
//
// Anything else (spatial types, MariaDB's uuid and inet types) is refused by
// name, never cast to text silently.
func pgType(c column) (string, error) {
	switch c.dataType {
	case "tinyint":
		return "smallint", nil
	case "smallint":
		if c.unsigned {
			return "integer", nil
		}
		return "smallint", nil
	case "mediumint":
		return "integer", nil
	case "int", "integer":
		if c.unsigned {
			return "bigint", nil
		}
		return "integer", nil
	case "bigint":
		if c.unsigned {
			return "numeric(20)", nil
		}
		return "bigint", nil
	case "decimal", "numeric":
		return fmt.Sprintf("numeric(%d,%d)", c.precision, c.scale), nil
	case "float":
		return "real", nil
	case "double", "real":
		return "double precision", nil
	case "bit":
		return fmt.Sprintf("bit(%d)", c.precision), nil
	case "char", "varchar":
		if err := checkCharset(c); err != nil {
			return "", err
		}
		return fmt.Sprintf("varchar(%d)", max(c.length, 1)), nil
	case "tinytext", "text", "mediumtext", "longtext":
		if err := checkCharset(c); err != nil {
			return "", err
		}
		return "text", nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return "bytea", nil
	case "date":
		return "date", nil
	case "datetime":
		return fmt.Sprintf("timestamp(%d)", c.fraction), nil
	case "timestamp":
		return fmt.Sprintf("timestamptz(%d)", c.fraction), nil
	case "time":
		return "interval", nil
	case "year":
		return "smallint", nil
	case "enum", "set":
		return "text", nil
	case "json":
		return "json", nil
	}
	return "", fmt.Errorf("column %s has type %s, which Sluice cannot map to PostgreSQL yet; exclude the table or remove the column with a remove-column rule", c.name, c.columnType)
}

// checkCharset refuses text whose bytes the change stream would carry in
// an encoding other than UTF-8.
func checkCharset(c column) error {
	switch c.charset {
	case "", "utf8", "utf8mb3", "utf8mb4", "ascii":
		return nil
	}
	return fmt.Errorf("column %s uses character set %s; Sluice reads utf8mb4, utf8 and ascii text: convert the column (ALTER TABLE … CONVERT TO CHARACTER SET utf8mb4) or remove it with a remove-column rule", c.name, c.charset)
}

// labels reads the members of an enum(…) or set(…) column type, in
// which a quote inside a member is written twice.
func labels(columnType string) []string {
	open, end := strings.IndexByte(columnType, '('), strings.LastIndexByte(columnType, ')')
	if open < 0 || end < open {
		return nil
	}
	var out []string
	s := columnType[open+1 : end]
	for len(s) > 0 && s[0] == '\'' {
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out
}

// errZeroDate is the error for a zero date when the settings do not say
// to read it as NULL.
func errZeroDate(c column, v string) error {
	return fmt.Errorf("column %s holds the MySQL zero date %q, which PostgreSQL cannot store: set SluiceSettings.ZeroDateAsNull to true to replicate it as NULL, or fix the source rows", c.name, v)
}

// render turns a value as go-mysql reads it — from the text protocol of a
// full load or from a binlog row event — into the text form of its
// PostgreSQL type.
func (s *Source) render(c *column, v any) (runtime.Value, error) {
	text := func(x string) (runtime.Value, error) { return runtime.Value{Kind: runtime.Text, Data: []byte(x)}, nil }
	if v == nil {
		return runtime.Value{Kind: runtime.Null}, nil
	}
	switch x := v.(type) {
	case int8, int16, int32, int64, int:
		n := reflectInt(x)
		switch c.dataType {
		case "bit":
			return text(bits(uint64(n), int(c.precision)))
		case "enum":
			return enumLabel(c, n)
		case "set":
			return text(setLabels(c, uint64(n)))
		}
		if c.unsigned && n < 0 {
			// The binlog carries no signedness unless binlog_row_metadata
			// is FULL: put the sign bit back as a magnitude.
			return text(unsignedOf(n, c.dataType))
		}
		return text(strconv.FormatInt(n, 10))
	case uint8, uint16, uint32, uint64, uint:
		n := reflectUint(x)
		switch c.dataType {
		case "bit":
			return text(bits(n, int(c.precision)))
		case "set":
			return text(setLabels(c, n))
		case "enum":
			return enumLabel(c, int64(n))
		}
		return text(strconv.FormatUint(n, 10))
	case float32:
		return text(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		if c.dataType == "float" {
			return text(strconv.FormatFloat(float64(float32(x)), 'g', -1, 32))
		}
		return text(strconv.FormatFloat(x, 'g', -1, 64))
	case []byte:
		return s.renderString(c, x)
	case string:
		return s.renderString(c, []byte(x))
	}
	return runtime.Value{}, fmt.Errorf("column %s: unexpected value of Go type %T from the source", c.name, v)
}

func (s *Source) renderString(c *column, b []byte) (runtime.Value, error) {
	text := func(x string) (runtime.Value, error) { return runtime.Value{Kind: runtime.Text, Data: []byte(x)}, nil }
	switch c.dataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		if c.dataType == "binary" && int64(len(b)) < c.length {
			// The binlog drops a binary(n) value's trailing zero bytes.
			b = append(b, make([]byte, int(c.length)-len(b))...)
		}
		return text(`\x` + hex.EncodeToString(b))
	case "bit":
		// The text protocol sends bit(n) as big-endian bytes.
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return text(bits(n, int(c.precision)))
	case "date", "datetime", "timestamp":
		v := string(b)
		if strings.HasPrefix(v, "0000-00-00") {
			if s.cfg.ZeroDateAsNull {
				return runtime.Value{Kind: runtime.Null}, nil
			}
			return runtime.Value{}, errZeroDate(*c, v)
		}
		if c.dataType == "timestamp" {
			// Read in a UTC session, and from the binlog as UTC.
			v += "+00"
		}
		return text(v)
	case "float", "double", "real":
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return runtime.Value{}, fmt.Errorf("column %s: %w", c.name, err)
		}
		return s.render(c, f)
	}
	return runtime.Value{Kind: runtime.Text, Data: b}, nil
}

func reflectInt(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	return v.(int64)
}

func reflectUint(v any) uint64 {
	switch x := v.(type) {
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint:
		return uint64(x)
	}
	return v.(uint64)
}

// unsignedOf reads a negative number as the unsigned value of the same bits.
func unsignedOf(n int64, dataType string) string {
	width := map[string]uint{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}[dataType]
	if width == 0 || width == 64 {
		return new(big.Int).SetUint64(uint64(n)).String()
	}
	return strconv.FormatUint(uint64(n)&(math.MaxUint64>>(64-width)), 10)
}

// bits renders the low n bits of v as PostgreSQL bit(n) text.
func bits(v uint64, n int) string {
	s := strconv.FormatUint(v, 2)
	if len(s) < n {
		s = strings.Repeat("0", n-len(s)) + s
	}
	return s
}

// enumLabel turns a binlog enum index (1-based; 0 is MySQL's empty error
// value) into its label.
func enumLabel(c *column, i int64) (runtime.Value, error) {
	if i == 0 {
		return runtime.Value{Kind: runtime.Text, Data: []byte{}}, nil
	}
	if i < 0 || int(i) > len(c.labels) {
		return runtime.Value{}, fmt.Errorf("column %s: enum index %d is outside its %d members (did the column change?)", c.name, i, len(c.labels))
	}
	return runtime.Value{Kind: runtime.Text, Data: []byte(c.labels[i-1])}, nil
}

// setLabels turns a binlog set bitmap into MySQL's comma-separated text.
func setLabels(c *column, m uint64) string {
	var out []string
	for i, l := range c.labels {
		if m&(1<<uint(i)) != 0 {
			out = append(out, l)
		}
	}
	return strings.Join(out, ",")
}
