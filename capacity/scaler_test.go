package capacity

import (
	"strings"
	"testing"
	"time"
)

func TestScaler(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	busy := Utilization{CPU: 0.9}         // 90% of one unit
	idle := Utilization{CPU: 0.05}        // 5%
	full := Utilization{BufferFill: 0.95} // the applier cannot keep up
	lagging := Utilization{Lag: 29 * time.Second}
	type sample struct {
		at    time.Duration // after t0
		units int
		u     Utilization
		want  int
		why   string // in the reason, when it changes
	}
	for _, c := range []struct {
		name     string
		min, max int
		samples  []sample
	}{
		{"up after a sustained load", 1, 8, []sample{
			{0, 1, busy, 1, ""}, {time.Minute, 1, busy, 1, ""}, {2 * time.Minute, 1, busy, 2, "cores used"},
		}},
		{"a dip resets the climb", 1, 8, []sample{
			{0, 1, busy, 1, ""}, {90 * time.Second, 1, idle, 1, ""}, {100 * time.Second, 1, busy, 1, ""}, {3 * time.Minute, 1, busy, 1, ""}, {220 * time.Second, 1, busy, 2, ""},
		}},
		{"the buffer fills", 2, 8, []sample{
			{0, 2, full, 2, ""}, {2 * time.Minute, 2, full, 4, "buffer 95% full"},
		}},
		{"lag counts", 1, 2, []sample{
			{0, 1, lagging, 1, ""}, {2 * time.Minute, 1, lagging, 2, "lag 29s"},
		}},
		{"capped at the maximum", 1, 2, []sample{
			{0, 2, Utilization{CPU: 1.9}, 2, ""}, {10 * time.Minute, 2, Utilization{CPU: 1.9}, 2, ""},
		}},
		{"down only after the longer wait", 1, 8, []sample{
			{0, 4, idle, 4, ""}, {2 * time.Minute, 4, idle, 4, ""}, {14 * time.Minute, 4, idle, 4, ""}, {15 * time.Minute, 4, idle, 2, "Scaled down from 4 to 2"},
		}},
		{"never below the minimum", 2, 8, []sample{
			{0, 2, idle, 2, ""}, {time.Hour, 2, idle, 2, ""},
		}},
		{"the same CPU is less load on more units", 1, 8, []sample{
			{0, 2, busy, 2, ""}, {time.Hour, 2, busy, 2, ""},
		}},
		{"a resize starts the clock again", 1, 8, []sample{
			{0, 1, busy, 1, ""}, {2 * time.Minute, 1, busy, 2, ""}, {3 * time.Minute, 2, Utilization{CPU: 1.8}, 2, ""}, {5 * time.Minute, 2, Utilization{CPU: 1.8}, 4, "from 2 to 4"},
		}},
		{"between the thresholds nothing happens", 1, 8, []sample{
			{0, 2, Utilization{CPU: 1}, 2, ""}, {time.Hour, 2, Utilization{CPU: 1}, 2, ""},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := DefaultScaler()
			for i, sm := range c.samples {
				got, why := s.Observe("r", sm.units, c.min, c.max, sm.u, t0.Add(sm.at))
				if got != sm.want {
					t.Fatalf("sample %d: %d units, want %d (%s)", i, got, sm.want, why)
				}
				if (got != sm.units) != (why != "") || !strings.Contains(why, sm.why) {
					t.Fatalf("sample %d: reason %q, want one containing %q only when the units change", i, why, sm.why)
				}
			}
		})
	}
}

func TestNextUnits(t *testing.T) {
	for _, c := range []struct{ units, dir, want int }{
		{1, 1, 2}, {2, 1, 4}, {128, 1, 192}, {384, 1, 384}, {1, -1, 1}, {2, -1, 1}, {192, -1, 128}, {3, 1, 4}, {3, -1, 2},
	} {
		if got := nextUnits(c.units, c.dir); got != c.want {
			t.Errorf("nextUnits(%d, %d) = %d, want %d", c.units, c.dir, got, c.want)
		}
	}
}
