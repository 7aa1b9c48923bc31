package mysqltarget

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/copytext"
)

// loadInfile loads COPY text rows with LOAD DATA LOCAL INFILE: the rows
// are rewritten into the form LOAD DATA reads (copytext.LoadData) with each
// value in its MySQL form.
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
	var out []byte
	rows, err := eachRow(ctx, r, tb, func(vals []runtime.Value) error {
		for i, v := range vals {
			if i > 0 {
				out = append(out, '\t')
			}
			if v.Kind != runtime.Null {
				m, err := mysqlValue(cols[copied[i]], v.Data)
				if err != nil {
					return fmt.Errorf("%s.%s: %w", tb.QualifiedSource(), tb.Columns[copied[i]].SourceName, err)
				}
				v.Data = m
			}
			out = copytext.LoadData.AppendField(out, v)
		}
		out = append(out, '\n')
		return nil
	})
	if err != nil {
		return rows, err
	}
	if rows == 0 {
		return 0, nil
	}
	// In a transaction: a load whose warnings say rows were cut short or
	// left out is undone, and fails with the first of them.
	if _, err := conn.Execute("BEGIN"); err != nil {
		return 0, err
	}
	res, err := conn.ExecQueryRelayLocalInfile(q, func([]byte) (io.Reader, error) { return bytes.NewReader(out), nil })
	if err != nil {
		return 0, fmt.Errorf("LOAD DATA into %s (the server needs local_infile=ON): %w", tableName(tb), err)
	}
	if err := loadWarnings(conn, res); err != nil {
		_, _ = conn.Execute("ROLLBACK")
		return 0, fmt.Errorf("LOAD DATA into %s: %w", tableName(tb), err)
	}
	if _, err := conn.Execute("COMMIT"); err != nil {
		return 0, err
	}
	return rows, nil
}

// eachRow reads COPY text rows of tb from r and passes each one's values,
// in the order of tb.Copied(), to fn; it returns how many it read.
func eachRow(ctx context.Context, r io.Reader, tb *runtime.Table, fn func([]runtime.Value) error) (int64, error) {
	n := len(tb.Copied())
	vals := make([]runtime.Value, n)
	var rows int64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != n {
			return rows, fmt.Errorf("a row of %s has %d fields, want %d", tb.QualifiedSource(), len(fields), n)
		}
		for i, f := range fields {
			vals[i] = copytext.ParseField(f)
		}
		if err := fn(vals); err != nil {
			return rows, err
		}
		rows++
	}
	return rows, sc.Err()
}
