package runtime

import (
	"strings"
	"testing"
)

func TestServerIDAttribute(t *testing.T) {
	cases := []struct {
		eca     string
		want    uint32
		wantErr string
	}{
		{"", 0, ""},
		{"parallelLoadThreads=4", 0, ""},
		{"serverId=1234", 1234, ""},
		{"initstmt=SET x=1; ServerID = 77 ;", 77, ""},
		{"serverId=4294967295", 4294967295, ""},
		{"serverId=0", 0, "not a binlog server id"},
		{"serverId=4294967296", 0, "not a binlog server id"},
		{"serverId=abc", 0, "not a binlog server id"},
	}
	for _, c := range cases {
		got, err := ServerIDAttribute(c.eca)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ServerIDAttribute(%q) error = %v, want %q", c.eca, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ServerIDAttribute(%q) = %d, %v; want %d", c.eca, got, err, c.want)
		}
	}
}
