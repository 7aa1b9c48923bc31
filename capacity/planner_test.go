package capacity

import (
	"strings"
	"testing"
)

func TestSize(t *testing.T) {
	const GiB, MiB = 1 << 30, 1 << 20
	cases := []struct {
		name     string
		m        Metadata
		min, max int
		units    int
		reason   string // a part of the sentence
	}{
		{"small database, quiet", Metadata{Tables: 3, Bytes: 50 * MiB, FullLoad: true}, 0, 0, 1, "50.0 MiB in 3 table(s) needs 1 for the full load"},
		{"medium load", Metadata{Tables: 12, Bytes: 36 * GiB, FullLoad: true, ChangeBytesPerSecond: 2 * MiB}, 1, 16, 4, "36.0 GiB in 12 table(s) needs 4"},
		{"busy source, cdc only", Metadata{ChangeBytesPerSecond: 30 * MiB}, 1, 64, 8, "30.0 MiB/s of changes needs 8"},
		{"capped by max", Metadata{Bytes: 2 << 40, FullLoad: true}, 1, 4, 4, "capped at MaxCapacityUnits 4"},
		{"raised by min", Metadata{Bytes: 10 * MiB, FullLoad: true}, 8, 16, 8, "raised to MinCapacityUnits 8"},
		{"LOBs need memory", Metadata{Bytes: 600 * MiB, LOBColumns: 2, FullLoad: true}, 1, 8, 2, "needs 2 for the full load"},
		{"cdc beyond the ladder", Metadata{ChangeBytesPerSecond: 500 * MiB}, 1, 384, 64, "needs 64"},
		{"load not counted for cdc", Metadata{Bytes: 500 * GiB, ChangeBytesPerSecond: MiB / 2}, 1, 16, 1, "512.0 KiB/s of changes needs 1"},
	}
	for _, c := range cases {
		p, err := Size(c.m, c.min, c.max)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Units != c.units || p.MemoryLimitMiB != c.units*UnitMiB || p.BufferMiB != p.MemoryLimitMiB/4 {
			t.Errorf("%s: %+v, want %d units with their memory and a quarter of it for the buffer", c.name, p, c.units)
		}
		if p.FullLoadParallelism < 4 || p.FullLoadParallelism > 49 {
			t.Errorf("%s: parallelism %d outside 4..49", c.name, p.FullLoadParallelism)
		}
		if !strings.Contains(p.Reason, c.reason) || !strings.HasPrefix(p.Reason, "Provisioned ") {
			t.Errorf("%s: reason %q lacks %q", c.name, p.Reason, c.reason)
		}
	}
	for _, bad := range [][2]int{{3, 8}, {1, 500}, {16, 8}} {
		if _, err := Size(Metadata{}, bad[0], bad[1]); err == nil {
			t.Errorf("Size with min %d max %d: want an error", bad[0], bad[1])
		}
	}
}
