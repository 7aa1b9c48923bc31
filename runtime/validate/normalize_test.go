package validate

import (
	"testing"
	"time"
)

// The Go normalisations must make the two engines' texts of one value
// equal, and keep different values apart.
func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		name string
		norm func([]byte) ([]byte, error)
		a, b string
		same bool
	}{
		// A MySQL float widened to double, and the real it was copied to.
		{"float32", normFloat(32), "0.3333333432674408", "0.33333334", true},
		{"float32 differs", normFloat(32), "0.3333333432674408", "0.33333337", false},
		{"float64", normFloat(64), "1e300", "1e+300", true},
		{"float64 last bit", normFloat(64), "0.30000000000000004", "0.3", false},
		{"infinity", normFloat(64), "inf", "Infinity", true},
		{"time and interval", normDuration, "100:00:01.250", "100:00:01.25", true},
		{"negative time", normDuration, "-838:59:59.000", "-838:59:59", true},
		{"interval with days", normDuration, "1 day 02:00:00", "26:00:00", true},
		{"time differs", normDuration, "00:00:01.000001", "00:00:01", false},
		{"json members and space", normJSON, `{"b": 1, "a": [1.5, "x"]}`, `{"a":[1.5,"x"],"b":1}`, true},
		{"json number text", normJSON, `{"n": 1.0}`, `{"n": 1}`, false},
	} {
		a, err1 := c.norm([]byte(c.a))
		b, err2 := c.norm([]byte(c.b))
		if err1 != nil || err2 != nil {
			t.Errorf("%s: %v %v", c.name, err1, err2)
			continue
		}
		if (string(a) == string(b)) != c.same {
			t.Errorf("%s: %q → %q and %q → %q; want equal %v", c.name, c.a, a, c.b, b, c.same)
		}
	}
	if _, err := normDuration([]byte("soon")); err == nil {
		t.Error("normDuration accepted a word")
	}
}

// hash60 must agree with what the databases compute: the first 15 hex
// digits of md5('N' || 'V1:a') read as a number (checked with PostgreSQL:
// ('x' || substr(md5('NV1:a'), 1, 15))::bit(60)::bigint).
func TestHash60(t *testing.T) {
	if got := hash60([][]byte{nil, []byte("a")}); got != 666632974732823123 {
		t.Fatalf("hash60 = %d, want 666632974732823123", got)
	}
}

// A row found again keeps when it was first found, and rows found before
// that are not found again stay pending.
func TestMergeCandidates(t *testing.T) {
	t0 := time.Unix(100, 0)
	c := func(k string, at int64) *candidate {
		return &candidate{m: mismatch{key: bound{k}}, first: t0.Add(time.Duration(at) * time.Second)}
	}
	got := mergeCandidates([]*candidate{c("a", 0), c("b", 1)}, []*candidate{c("b", 5), c("c", 5)})
	want := map[string]int64{"a": 0, "b": 1, "c": 5}
	if len(got) != len(want) {
		t.Fatalf("merged %d candidates, want %d", len(got), len(want))
	}
	for _, x := range got {
		if at, ok := want[x.m.key[0]]; !ok || !x.first.Equal(t0.Add(time.Duration(at)*time.Second)) {
			t.Errorf("candidate %s first found at %v", x.m.key[0], x.first)
		}
	}
}
