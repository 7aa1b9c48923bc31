package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

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

// ServerIDAttribute reads the binlog replica id from an endpoint's
// ExtraConnectionAttributes ("serverId=1234;…", DMS's syntax): zero when
// absent, an error when it is not a number from 1 to 4294967295.
func ServerIDAttribute(eca string) (uint32, error) {
	for _, kv := range strings.Split(eca, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "serverId") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("ExtraConnectionAttributes serverId=%q is not a binlog server id: use a number from 1 to 4294967295 that no server or other reader uses", strings.TrimSpace(v))
		}
		return uint32(n), nil
	}
	return 0, nil
}
