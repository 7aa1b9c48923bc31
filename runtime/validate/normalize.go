package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// normFloat reads a floating-point value as either engine prints it and
// prints it as the shortest text that reads back to the same value of the
// given width: a MySQL float widened to double and the PostgreSQL real it
// was copied to come out the same.
func normFloat(bits int) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		s := strings.ToLower(strings.TrimSpace(string(b)))
		var v float64
		switch s {
		case "nan":
			v = math.NaN()
		case "infinity", "inf", "+infinity":
			v = math.Inf(1)
		case "-infinity", "-inf":
			v = math.Inf(-1)
		default:
			var err error
			if v, err = strconv.ParseFloat(s, bits); err != nil {
				return nil, fmt.Errorf("%q is not a floating-point number", b)
			}
		}
		return []byte(strconv.FormatFloat(v, 'g', -1, bits)), nil
	}
}

// normDuration reads a MySQL time ([-]H:MM:SS[.ffffff]) or the
// PostgreSQL interval it was copied to ([-]H:MM:SS[.f], perhaps with days)
// and prints its length in microseconds.
func normDuration(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	var days int64
	if i := strings.Index(s, " day"); i > 0 {
		d, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration", b)
		}
		days = d
		s = strings.TrimSpace(s[i+len(" day"):])
		s = strings.TrimSpace(strings.TrimPrefix(s, "s"))
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		if s == "" && days != 0 {
			parts = []string{"0", "0", "0"}
		} else {
			return nil, fmt.Errorf("%q is not a duration", b)
		}
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	sec, frac, _ := strings.Cut(parts[2], ".")
	sv, err3 := strconv.ParseInt(sec, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(frac) > 6 {
		return nil, fmt.Errorf("%q is not a duration", b)
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration", b)
		}
		us = f
	}
	total := ((h*60+m)*60+sv)*1_000_000 + us
	if neg {
		total = -total
	}
	total += days * 86_400_000_000
	return []byte(strconv.FormatInt(total, 10)), nil
}

// normJSON reads a JSON document and prints it with no insignificant
// space and object members in key order, numbers as they were written.
func normJSON(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a JSON document: %w", err)
	}
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}
