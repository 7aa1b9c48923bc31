package mysqltarget

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluicedb/sluice/runtime"
)

// loadInfile loads COPY text rows with LOAD DATA LOCAL INFILE: the rows
// are rewritten into MySQL's tab-separated form (which escapes as COPY
// does) with each value in its MySQL form.
func loadInfile(ctx context.Context, conn *client.Conn, tb *runtime.Table, cols []column, r io.Reader) (int64, error) {
	copied := tb.Copied()
	var names, sets []string
	for i, c := range copied {
		n := ident(tb.Columns[c].Name)
		if cols[c].kind == kBits {
			// LOAD DATA reads text into bit columns as the text's bytes.
			v := "@v" + strconv.Itoa(i)
			names = append(names, v)
			sets = append(sets, n+" = CAST("+v+" AS UNSIGNED)")
			continue
		}
		names = append(names, n)
	}
	q := "LOAD DATA LOCAL INFILE 'sluice' INTO TABLE " + tableName(tb) + " CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" + strings.Join(names, ", ") + ")"
	if len(sets) > 0 {
		q += " SET " + strings.Join(sets, ", ")
	}
	var out bytes.Buffer
	var rows int64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != len(copied) {
			return rows, fmt.Errorf("a row of %s has %d fields, want %d", tb.QualifiedSource(), len(fields), len(copied))
		}
		for i, fld := range fields {
			if i > 0 {
				out.WriteByte('\t')
			}
			if fld == `\N` {
				out.WriteString(`\N`)
				continue
			}
			v, err := infileValue(cols[copied[i]], unescapeCopy(fld))
			if err != nil {
				return rows, fmt.Errorf("%s.%s: %w", tb.QualifiedSource(), tb.Columns[copied[i]].SourceName, err)
			}
			escapeInfile(&out, v)
		}
		out.WriteByte('\n')
		rows++
	}
	if err := sc.Err(); err != nil {
		return rows, err
	}
	if rows == 0 {
		return 0, nil
	}
	if _, err := conn.ExecQueryRelayLocalInfile(q, func([]byte) (io.Reader, error) { return bytes.NewReader(out.Bytes()), nil }); err != nil {
		return 0, fmt.Errorf("LOAD DATA into %s (the server needs local_infile=ON): %w", tableName(tb), err)
	}
	return rows, nil
}

// infileValue is a value in its MySQL form, unescaped.
func infileValue(c column, v []byte) ([]byte, error) {
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
		if !ok {
			return nil, fmt.Errorf("value %q is not bytea text", clip(s))
		}
		return hex.DecodeString(h)
	case kTime:
		if strings.HasPrefix(s, "infinity") || strings.HasPrefix(s, "-infinity") || strings.HasSuffix(s, " BC") {
			return nil, fmt.Errorf("value %q has no MySQL form", s)
		}
		return []byte(strings.TrimSuffix(strings.TrimSuffix(s, "+00:00"), "+00")), nil
	}
	return v, nil
}

// escapeInfile escapes a value for LOAD DATA's default format.
func escapeInfile(b *bytes.Buffer, v []byte) {
	for _, c := range v {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
}
