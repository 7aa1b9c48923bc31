package validate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/runtime"
)

// bound is a key, as the canonical text of each key column; nil is open.
type bound []string

// leafRows is the most rows a range may hold on either side before its
// rows are compared one by one instead of split again.
const leafRows = 64

// mismatch is a row that differs between the snapshots.
type mismatch struct {
	key     bound
	typ     string // runtime.MissingTarget, MissingSource, RecordDiff
	details string
}

func (m mismatch) keyString() string { return strings.Join(m.key, runtime.KeySep) }

// reader is one side of a comparison: a session and how its SQL reads
// the plan's table.
type reader struct {
	p   *plan
	src bool
	s   runtime.ReadSession
	// fetched and bytes count the rows and bytes brought back to Go.
	fetched, bytes int64
}

func (r *reader) d() dialect {
	if r.src {
		return r.p.src
	}
	return r.p.tgt
}

func (r *reader) table() string {
	if r.src {
		return r.p.srcTable
	}
	return r.p.tgtTable
}

func (r *reader) expr(c col) string {
	if r.src {
		return c.src
	}
	return c.tgt
}

func (r *reader) ord(c col) string {
	if r.src {
		return c.srcOrd
	}
	return c.tgtOrd
}

func (r *reader) lit(c col, v string) string {
	if r.src {
		return c.srcLit(v)
	}
	return c.tgtLit(v)
}

func tuple(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return "(" + strings.Join(xs, ", ") + ")"
}

func (r *reader) keyOrds() []string {
	out := make([]string, len(r.p.key))
	for i, k := range r.p.key {
		out[i] = r.ord(k)
	}
	return out
}

func (r *reader) keyLits(b bound) []string {
	out := make([]string, len(r.p.key))
	for i, k := range r.p.key {
		out[i] = r.lit(k, b[i])
	}
	return out
}

// where bounds a query to the keys from lo (included) to hi (excluded).
func (r *reader) where(lo, hi bound) string {
	var conds []string
	if lo != nil {
		conds = append(conds, tuple(r.keyOrds())+" >= "+tuple(r.keyLits(lo)))
	}
	if hi != nil {
		conds = append(conds, tuple(r.keyOrds())+" < "+tuple(r.keyLits(hi)))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// whereKeys selects the rows of keys, by equality on the columns
// themselves so the key's index serves.
func (r *reader) whereKeys(keys []bound) string {
	cols := make([]string, len(r.p.key))
	for i, k := range r.p.key {
		cols[i] = r.d().quote(r.name(k))
	}
	lits := make([]string, len(keys))
	for i, k := range keys {
		lits[i] = tuple(r.keyLits(k))
	}
	return " WHERE " + tuple(cols) + " IN (" + strings.Join(lits, ", ") + ")"
}

// name is a column's name on this side.
func (r *reader) name(k col) string {
	if r.src {
		return k.name
	}
	for _, c := range r.p.t.Columns {
		if c.SourceName == k.name {
			return c.Name
		}
	}
	return k.name
}

// all is every compared column, key first.
func (p *plan) all() []col { return append(append([]col(nil), p.key...), p.cols...) }

// rowText is the SQL of a row's canonical text.
func (r *reader) rowText() string {
	all := r.p.all()
	parts := make([]string, len(all))
	for i, c := range all {
		parts[i] = r.d().part(r.expr(c))
	}
	return r.d().concat(parts)
}

// selectList is the canonical texts of every compared column.
func (r *reader) selectList() string {
	all := r.p.all()
	out := make([]string, len(all))
	for i, c := range all {
		out[i] = r.expr(c)
	}
	return strings.Join(out, ", ")
}

// rawList is every compared column by name, for a record whose text
// output prints each by its type's output function.
func (r *reader) rawList() string {
	all := r.p.all()
	out := make([]string, len(all))
	for i, c := range all {
		out[i] = r.d().quote(r.name(c))
	}
	return strings.Join(out, ", ")
}

// sumExpr is the SQL of a range's sum of row hashes.
func (r *reader) sumExpr() string {
	switch {
	case r.p.typed:
		return "coalesce(sum(hash_record_extended(ROW(" + r.rawList() + "), 0)), 0)"
	case r.p.native:
		return "coalesce(sum(hashtextextended(ROW(" + r.rawList() + ")::text, 0)), 0)"
	}
	return r.d().sum60(r.rowText())
}

// bucketed says the table's ranges can be summed in one scan of each side:
// a key of one integer column, every column printed in SQL.
func (p *plan) bucketed() bool {
	if len(p.key) != 1 || p.client {
		return false
	}
	c := p.t.Columns[p.t.Key[0]]
	switch baseType(c.Type) {
	case "smallint", "integer", "bigint":
		return true
	}
	return false
}

// bucketSpan is the key range of an integer key split into buckets of
// step keys from lo: bucket b holds lo+b*step up to lo+(b+1)*step, the
// first and last also whatever lies beyond.
type bucketSpan struct {
	lo, step int64
	n        int64
}

func (b bucketSpan) bounds(i int64) (bound, bound) {
	var lo, hi bound
	if i > 0 {
		lo = bound{strconv.FormatInt(b.lo+i*b.step, 10)}
	}
	if i < b.n-1 {
		hi = bound{strconv.FormatInt(b.lo+(i+1)*b.step, 10)}
	}
	return lo, hi
}

// keySpan reads the source's smallest and largest key.
func (r *reader) keySpan(ctx context.Context) (lo, hi int64, ok bool, err error) {
	k := r.d().quote(r.name(r.p.key[0]))
	err = r.s.Query(ctx, "SELECT min("+k+"), max("+k+") FROM "+r.table(), func(v [][]byte) error {
		if v[0] == nil {
			return nil
		}
		var err1, err2 error
		lo, err1 = strconv.ParseInt(string(v[0]), 10, 64)
		hi, err2 = strconv.ParseInt(string(v[1]), 10, 64)
		ok = err1 == nil && err2 == nil
		return nil
	})
	return lo, hi, ok, err
}

// bucketSums sums the buckets first to last (excluded) of b in one scan:
// bucket → "count sum". The first and last buckets of b also hold the keys
// beyond b's span.
func (r *reader) bucketSums(ctx context.Context, b bucketSpan, first, last int64) (map[int64]string, error) {
	k := r.d().quote(r.name(r.p.key[0]))
	var expr string
	if r.d() == (mysqlDialect{}) {
		expr = fmt.Sprintf("LEAST(GREATEST((CAST(%s AS SIGNED) - %d) DIV %d, 0), %d)", k, b.lo, b.step, b.n-1)
	} else {
		expr = fmt.Sprintf("LEAST(GREATEST((%s::bigint - %d) / %d, 0), %d)", k, b.lo, b.step, b.n-1)
	}
	lo, _ := b.bounds(first)
	_, hi := b.bounds(last - 1)
	out := map[int64]string{}
	q := "SELECT " + expr + ", count(*), " + r.sumExpr() + " FROM " + r.table() + r.where(lo, hi) + " GROUP BY 1"
	if r.d() == (pgDialect{}) && (lo != nil || hi != nil) {
		// A part of the table: through the key's index, not a scan of
		// all of it that filters out the other parts.
		if err := r.s.Query(ctx, "SET LOCAL enable_seqscan = off", func([][]byte) error { return nil }); err != nil {
			return nil, err
		}
		defer func() { _ = r.s.Query(ctx, "SET LOCAL enable_seqscan = on", func([][]byte) error { return nil }) }()
	}
	err := r.s.Query(ctx, q, func(v [][]byte) error {
		i, err := strconv.ParseInt(string(v[0]), 10, 64)
		out[i] = string(v[1]) + " " + string(v[2])
		return err
	})
	return out, err
}

// sumBoth sums the keys from lo to hi on both sides at once (each waits
// on its own database) and returns each side's row count and sum.
func sumBoth(ctx context.Context, src, tgt *reader, lo, hi bound) (sn int64, ssum string, tn int64, tsum string, err error) {
	var terr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn, tsum, terr = tgt.checksum(ctx, tgt.where(lo, hi))
	}()
	sn, ssum, err = src.checksum(ctx, src.where(lo, hi))
	<-done
	if err != nil {
		return 0, "", 0, "", fmt.Errorf("source: %w", err)
	}
	if terr != nil {
		return 0, "", 0, "", fmt.Errorf("target: %w", terr)
	}
	return sn, ssum, tn, tsum, nil
}

// checksum returns how many rows a range holds and the sum of their
// hashes, computed in the database when every column has a canonical SQL
// form, else in Go from the fetched rows.
func (r *reader) checksum(ctx context.Context, cond string) (int64, string, error) {
	if !r.p.client {
		var n int64
		var sum string
		q := "SELECT count(*), " + r.sumExpr() + " FROM " + r.table() + cond
		err := r.s.Query(ctx, q, func(v [][]byte) error {
			var err error
			n, err = strconv.ParseInt(string(v[0]), 10, 64)
			sum = string(v[1])
			return err
		})
		return n, sum, err
	}
	var n int64
	sum := new(big.Int)
	var h big.Int
	err := r.rows(ctx, cond, func(vals [][]byte) error {
		n++
		h.SetUint64(hash60(vals))
		sum.Add(sum, &h)
		return nil
	})
	return n, sum.String(), err
}

// rows calls row for each row of cond, its values canonical (normalised
// in Go where the plan says so), key columns first.
func (r *reader) rows(ctx context.Context, cond string, row func([][]byte) error) error {
	all := r.p.all()
	q := "SELECT " + r.selectList() + " FROM " + r.table() + cond
	return r.s.Query(ctx, q, func(v [][]byte) error {
		r.fetched++
		for i, c := range all {
			r.bytes += int64(len(v[i]))
			if c.norm != nil && v[i] != nil {
				nv, err := c.norm(v[i])
				if err != nil {
					return fmt.Errorf("column %s: %w", c.name, err)
				}
				v[i] = nv
			}
		}
		return row(v)
	})
}

// hash60 is the first 60 bits of the MD5 of a row's canonical text, as
// the databases compute it (dialect.part, concat, sum60).
func hash60(vals [][]byte) uint64 {
	h := md5.New()
	for _, v := range vals {
		if v == nil {
			h.Write([]byte{'N'})
			continue
		}
		h.Write([]byte{'V'})
		h.Write(strconv.AppendInt(nil, int64(len(v)), 10))
		h.Write([]byte{':'})
		h.Write(v)
	}
	sum := h.Sum(nil)
	return binary.BigEndian.Uint64(sum[:8]) >> 4
}

// keyAt returns the key at offset rows into the range, in key order, nil
// if the range holds no more rows.
func (r *reader) keyAt(ctx context.Context, cond string, offset int64) (bound, error) {
	// The texts are named apart from the columns: ORDER BY a name that is
	// also an output column's would order by the text, not the column.
	keys := make([]string, len(r.p.key))
	for i, k := range r.p.key {
		keys[i] = r.expr(k) + " AS sluice_k" + strconv.Itoa(i)
	}
	q := "SELECT " + strings.Join(keys, ", ") + " FROM " + r.table() + cond +
		" ORDER BY " + strings.Join(r.keyOrds(), ", ") + " LIMIT 1 OFFSET " + strconv.FormatInt(offset, 10)
	var out bound
	err := r.s.Query(ctx, q, func(v [][]byte) error {
		out = make(bound, len(v))
		for i, b := range v {
			if b == nil {
				return fmt.Errorf("key column %s is NULL", r.p.key[i].name)
			}
			out[i] = string(b)
		}
		return nil
	})
	return out, err
}

// fetch reads the rows of cond into a map by key.
func (r *reader) fetch(ctx context.Context, cond string) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	nk := len(r.p.key)
	err := r.rows(ctx, cond, func(v [][]byte) error {
		row := make([][]byte, len(v))
		for i, b := range v {
			if b != nil {
				row[i] = bytes.Clone(b)
			}
		}
		keys := make([]string, nk)
		for i := range keys {
			keys[i] = string(row[i])
		}
		out[strings.Join(keys, runtime.KeySep)] = row
		return nil
	})
	return out, err
}

// diff compares the rows of one range fetched from both sides.
func (p *plan) diff(src, tgt map[string][][]byte) []mismatch {
	var out []mismatch
	nk := len(p.key)
	all := p.all()
	for k, s := range src {
		key := bound(strings.Split(k, runtime.KeySep))
		t, ok := tgt[k]
		if !ok {
			out = append(out, mismatch{key: key, typ: runtime.MissingTarget})
			continue
		}
		var cols []map[string]any
		for i := nk; i < len(all); i++ {
			if !bytes.Equal(s[i], t[i]) || (s[i] == nil) != (t[i] == nil) {
				cols = append(cols, map[string]any{"column": all[i].name, "source": clip(s[i]), "target": clip(t[i])})
			}
		}
		if len(cols) > 0 {
			d, _ := json.Marshal(map[string]any{"columns": cols})
			out = append(out, mismatch{key: key, typ: runtime.RecordDiff, details: string(d)})
		}
	}
	for k := range tgt {
		if _, ok := src[k]; !ok {
			out = append(out, mismatch{key: bound(strings.Split(k, runtime.KeySep)), typ: runtime.MissingSource})
		}
	}
	return out
}

// clip shows at most 200 bytes of a value in failure details.
func clip(b []byte) any {
	if b == nil {
		return nil
	}
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// keyJSON is a key as awsdms_validation_failures_v1 shows it.
func keyJSON(k bound) string {
	b, _ := json.Marshal(map[string][]string{"key": k})
	return string(b)
}

// pair is one worker's two sessions.
type pair struct {
	src, tgt *reader
	// leaf is the most rows compared one by one; split says whether
	// differing ranges are split (GROUP_LEVEL) or compared whole.
	leaf  int64
	split bool
	found []mismatch
	// compared counts the source rows of ranges found equal or compared.
	compared int64
}

// compare compares the range from lo to hi, splitting it while it
// differs and holds more than leaf rows on either side.
func (w *pair) compare(ctx context.Context, lo, hi bound, depth int) error {
	if !w.split {
		return w.rowByRow(ctx, lo, hi)
	}
	sn, ssum, tn, tsum, err := sumBoth(ctx, w.src, w.tgt, lo, hi)
	if err != nil {
		return err
	}
	if sn == tn && ssum == tsum {
		w.compared += sn
		return nil
	}
	n, side := sn, w.src
	if tn > sn {
		n, side = tn, w.tgt
	}
	if n <= w.leaf || depth >= 48 {
		return w.rowByRow(ctx, lo, hi)
	}
	mid, err := side.keyAt(ctx, side.where(lo, hi), n/2)
	if err != nil {
		return err
	}
	if mid == nil || (lo != nil && strings.Join(mid, runtime.KeySep) == strings.Join(lo, runtime.KeySep)) {
		return w.rowByRow(ctx, lo, hi)
	}
	if err := w.compare(ctx, lo, mid, depth+1); err != nil {
		return err
	}
	return w.compare(ctx, mid, hi, depth+1)
}

// rowByRow fetches a range from both sides and compares it row by row.
func (w *pair) rowByRow(ctx context.Context, lo, hi bound) error {
	s, err := w.src.fetch(ctx, w.src.where(lo, hi))
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	t, err := w.tgt.fetch(ctx, w.tgt.where(lo, hi))
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	w.compared += int64(len(s))
	w.found = append(w.found, w.src.p.diff(s, t)...)
	return nil
}

// keys compares the rows of keys on both sides.
func (w *pair) keys(ctx context.Context, keys []bound) error {
	for len(keys) > 0 {
		n := min(len(keys), 500)
		s, err := w.src.fetch(ctx, w.src.whereKeys(keys[:n]))
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		t, err := w.tgt.fetch(ctx, w.tgt.whereKeys(keys[:n]))
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		w.compared += int64(n)
		w.found = append(w.found, w.src.p.diff(s, t)...)
		keys = keys[n:]
	}
	return nil
}

// multiset compares a keyless table as counts of each row hash. With
// every column in SQL, the databases group by hash and the two sorted
// lists are merged; otherwise only the table's checksum is compared.
func multiset(ctx context.Context, src, tgt *reader) ([]mismatch, int64, error) {
	sn, ssum, tn, tsum, err := sumBoth(ctx, src, tgt, nil, nil)
	if err != nil {
		return nil, 0, err
	}
	if sn == tn && ssum == tsum {
		return nil, sn, nil
	}
	if src.p.client {
		d := fmt.Sprintf(`{"source_rows":%d,"target_rows":%d}`, sn, tn)
		return []mismatch{{key: bound{"table"}, typ: runtime.RecordDiff, details: d}}, sn, nil
	}
	// Both sides list (hash, count) in hash order; the target's list is
	// merged with the source's as it arrives, so memory stays small
	// whatever the table holds.
	q := func(r *reader) string {
		h := "md5(" + r.rowText() + ")"
		// Hex digits of one length sort alike in every collation.
		return "SELECT " + h + ", count(*) FROM " + r.table() + " GROUP BY 1 ORDER BY 1"
	}
	type hc struct {
		h string
		n int64
	}
	ch := make(chan hc, 256)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srcErr := make(chan error, 1)
	go func() {
		defer close(ch)
		srcErr <- src.s.Query(gctx, q(src), func(v [][]byte) error {
			n, err := strconv.ParseInt(string(v[1]), 10, 64)
			src.fetched++
			select {
			case ch <- hc{string(v[0]), n}:
			case <-gctx.Done():
				return gctx.Err()
			}
			return err
		})
	}()
	var out []mismatch
	report := func(h string, n, m int64) {
		typ := runtime.MissingTarget
		if m > n {
			typ = runtime.MissingSource
		}
		out = append(out, mismatch{key: bound{h}, typ: typ, details: fmt.Sprintf(`{"row_md5":%q,"source_rows":%d,"target_rows":%d}`, h, n, m)})
	}
	next, more := <-ch
	err = tgt.s.Query(ctx, q(tgt), func(v [][]byte) error {
		h := string(v[0])
		m, err := strconv.ParseInt(string(v[1]), 10, 64)
		if err != nil {
			return err
		}
		tgt.fetched++
		for more && next.h < h {
			report(next.h, next.n, 0)
			next, more = <-ch
		}
		if more && next.h == h {
			if next.n != m {
				report(h, next.n, m)
			}
			next, more = <-ch
			return nil
		}
		report(h, 0, m)
		return nil
	})
	for err == nil && more {
		report(next.h, next.n, 0)
		next, more = <-ch
	}
	cancel()
	for range ch {
	}
	if serr := <-srcErr; err == nil && serr != nil && ctx.Err() == nil {
		err = fmt.Errorf("source: %w", serr)
	}
	if err != nil {
		return nil, 0, err
	}
	return out, sn, nil
}
