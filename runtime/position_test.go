package runtime

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePosition(t *testing.T) {
	cases := []struct {
		in      string
		want    string // native form, "" when an error is expected
		wantErr string
	}{
		{"16/B374D848", "16/B374D848", ""},                                                             // the form DMS and PostgreSQL print
		{"0/0", "0/0", ""},                                                                             // the smallest LSN
		{"FFFFFFFF/FFFFFFFF", "FFFFFFFF/FFFFFFFF", ""},                                                 // the largest LSN
		{"checkpoint:pg-lsn:16/B374D848", "16/B374D848", ""},                                           // a RecoveryCheckpoint given back
		{"  0/16B3748 ", "0/16B3748", ""},                                                              // whitespace from a copy-paste
		{"16-B374D848", "", "not recognized"},                                                          // wrong separator
		{"16/XYZ", "", "not a PostgreSQL LSN"},                                                         // not hex
		{"1FFFFFFFF/0", "", "not a PostgreSQL LSN"},                                                    // high half overflows 32 bits
		{"checkpoint:nope", "", "malformed"},                                                           // checkpoint without kind
		{"checkpoint:oracle-scn:12345", "", "unknown kind"},                                            // a kind this build cannot read
		{"checkpoint:mysql-gtid:0-1-2", "0-1-2", ""},                                                   // a MariaDB GTID checkpoint
		{"0-1-100,1-2-5", "0-1-100,1-2-5", ""},                                                         // MariaDB GTIDs of two domains
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77", ""}, // a MySQL GTID set
		{"mysql-bin.000024:373", "mysql-bin.000024:373", ""},                                           // a binlog position
		{"checkpoint:mysql-binlog:mysql-bin.000024:373", "mysql-bin.000024:373", ""},
		{"mysql-bin.000024:x", "", "not a binlog position"}, // offset not a number
		{"nodot:12", "", "not a binlog position"},           // no sequence number
	}
	for _, c := range cases {
		p, err := ParsePosition(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParsePosition(%q) error = %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePosition(%q): %v", c.in, err)
			continue
		}
		if p.String() != c.want {
			t.Errorf("ParsePosition(%q) = %s, want %s", c.in, p, c.want)
		}
		back, err := ParsePosition(Checkpoint(p))
		if err != nil || back.Compare(p) != 0 {
			t.Errorf("checkpoint of %s does not read back: %v, %v", p, back, err)
		}
	}
}

func TestLSNCompare(t *testing.T) {
	a, _ := ParseLSN("0/FFFFFFFF")
	b, _ := ParseLSN("1/0")
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Errorf("compare across the 32-bit boundary: %d %d %d", a.Compare(b), b.Compare(a), a.Compare(a))
	}
}

func TestProgressOnlyMovesForward(t *testing.T) {
	var p Progress
	if p.Get() != nil {
		t.Fatal("new progress has a position")
	}
	for _, l := range []LSN{10, 20, 20} {
		if err := p.Advance(l); err != nil {
			t.Fatalf("Advance(%s): %v", l, err)
		}
	}
	err := p.Advance(LSN(15))
	if !errors.Is(err, ErrPositionBackwards) {
		t.Fatalf("Advance backwards: err = %v, want ErrPositionBackwards", err)
	}
	if p.Get().Compare(LSN(20)) != 0 {
		t.Errorf("after a refused move the position is %s, want 0/14", p.Get())
	}
}

func TestBinlogPosCompare(t *testing.T) {
	p := func(s string) Position {
		b, err := ParseBinlogPos(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		a, b string
		want int
	}{
		{"mysql-bin.000001:400", "mysql-bin.000001:400", 0},
		{"mysql-bin.000001:400", "mysql-bin.000001:4000", -1},
		{"mysql-bin.000002:4", "mysql-bin.000001:9999", 1},
		{"mysql-bin.999999:4", "mysql-bin.1000000:4", -1}, // past six digits
	}
	for _, c := range cases {
		if got := p(c.a).Compare(p(c.b)); got != c.want {
			t.Errorf("%s vs %s = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
