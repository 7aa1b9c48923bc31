package copytext

import (
	"strings"

	"github.com/sluicedb/sluice/runtime"
)

// Null is the field that stands for NULL, in COPY text and LOAD DATA alike.
const Null = `\N`

// A Format names the reader that a field is escaped for.
type Format uint8

// Formats. Both escape the backslash, tab, newline and carriage return;
// they differ in NUL alone.
const (
	// Copy is PostgreSQL's COPY ... FROM STDIN in text format. A NUL byte
	// stays as it is: PostgreSQL text cannot hold one, and it would read
	// \0 as an octal escape of the same NUL, so the server refuses either.
	Copy Format = iota
	// LoadData is MySQL's LOAD DATA with FIELDS TERMINATED BY '\t'
	// ESCAPED BY '\\' LINES TERMINATED BY '\n'. NUL is written as \0, as
	// MySQL's own SELECT ... INTO OUTFILE writes it for LOAD DATA to read.
	LoadData
)

// AppendField appends v to dst as one field of f: Null unless v is Text
// (an Unchanged value has no data to write either), else v's bytes with
// the escapes of f. Other bytes pass unchanged, valid UTF-8 or not: what
// they mean is the reader's business (PostgreSQL refuses invalid UTF-8; the
// MySQL target's LOAD DATA reads CHARACTER SET binary).
func (f Format) AppendField(dst []byte, v runtime.Value) []byte {
	if v.Kind != runtime.Text {
		return append(dst, Null...)
	}
	from := 0
	for i, c := range v.Data {
		var e byte
		switch c {
		case '\\':
			e = '\\'
		case '\t':
			e = 't'
		case '\n':
			e = 'n'
		case '\r':
			e = 'r'
		case 0:
			if f != LoadData {
				continue
			}
			e = '0'
		default:
			continue
		}
		dst = append(dst, v.Data[from:i]...)
		dst = append(dst, '\\', e)
		from = i + 1
	}
	return append(dst, v.Data[from:]...)
}

// ParseField reads one field of COPY text as PostgreSQL writes it (COPY
// ... TO STDOUT) and as AppendField(Copy) does: Null for \N, else Text with
// the escapes \b \f \n \r \t \v undone. Any other escaped byte stands for
// itself (\\ for a backslash); PostgreSQL's writer emits no octal or hex
// escapes, so they are not read. A lone backslash at the end is kept.
func ParseField(s string) runtime.Value {
	if s == Null {
		return runtime.Value{Kind: runtime.Null}
	}
	return runtime.Value{Kind: runtime.Text, Data: unescape(s)}
}

func unescape(s string) []byte {
	if strings.IndexByte(s, '\\') < 0 {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			out = append(out, s[i])
			continue
		}
		i++
		c := s[i]
		if u := unescaped[c]; u != 0 {
			c = u
		}
		out = append(out, c)
	}
	return out
}

// unescaped maps the letter after a backslash to the byte it stands for.
var unescaped = [256]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
