package runtime

import "strings"

// mentions reports whether sql names any of cols as an identifier, quoted or
// not. It is deliberately conservative: a false positive only skips an index.
func mentions(sql string, cols map[string]bool) bool {
	for c := range cols {
		if strings.Contains(sql, `"`+strings.ReplaceAll(c, `"`, `""`)+`"`) {
			return true
		}
		for _, f := range strings.FieldsFunc(sql, func(r rune) bool {
			return !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r > 127)
		}) {
			if f == c {
				return true
			}
		}
	}
	return false
}
