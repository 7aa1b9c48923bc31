package capacity

import (
	"fmt"
	"time"
)

// Utilization is how hard a replicator works, as it reports it.
type Utilization struct {
	// BufferFill is the change buffer's use over its budget, 0 to 1: a
	// full buffer means the applier cannot keep up with the reader.
	BufferFill float64
	// CPU is the cores the replicator used lately.
	CPU float64
	// Lag is how far the target is behind the source.
	Lag time.Duration
}

// Scaler decides when a running replication needs other capacity: up after
// its load stayed above Upper for UpAfter, down after it stayed below
// Lower for the longer DownAfter (scaling down restarts the replicator
// too, so it waits to be sure). The load of a sample is the highest of the
// buffer fill, the CPU used over the CPU its units stand for, and the lag
// over LagLimit. A Scaler is not safe for concurrent use.
type Scaler struct {
	Upper, Lower       float64
	UpAfter, DownAfter time.Duration
	// UnitCPU is the cores one capacity unit stands for.
	UnitCPU float64
	// LagLimit is the lag that counts as a full load.
	LagLimit time.Duration

	state map[string]*trend
}

// trend is where one replication's load has been since when.
type trend struct {
	units           int
	above, below    time.Time // start of the current run above Upper / below Lower; zero if not in one
	peak, low       float64   // the highest and lowest load of the run, for the reason
	peakWhy, lowWhy string
}

// DefaultScaler is the scaler `sluice serve` runs unless told otherwise.
func DefaultScaler() *Scaler {
	return &Scaler{Upper: 0.75, Lower: 0.25, UpAfter: 2 * time.Minute, DownAfter: 15 * time.Minute, UnitCPU: 1, LagLimit: 30 * time.Second}
}

// load is a sample's load and what drives it.
func (s *Scaler) load(units int, u Utilization) (float64, string) {
	cpu := u.CPU / (s.UnitCPU * float64(units))
	lag := u.Lag.Seconds() / s.LagLimit.Seconds()
	switch {
	case u.BufferFill >= cpu && u.BufferFill >= lag:
		return u.BufferFill, fmt.Sprintf("change buffer %.0f%% full", 100*u.BufferFill)
	case cpu >= lag:
		return cpu, fmt.Sprintf("%.2f cores used of %.2f", u.CPU, s.UnitCPU*float64(units))
	}
	return lag, fmt.Sprintf("lag %s", u.Lag.Round(time.Millisecond))
}

// Observe records a sample of replication id running on units, within
// [minUnits, maxUnits], and returns the units it should have now, with
// the reason, or units and "" when it should stay as it is.
func (s *Scaler) Observe(id string, units, minUnits, maxUnits int, u Utilization, now time.Time) (int, string) {
	if s.state == nil {
		s.state = map[string]*trend{}
	}
	tr := s.state[id]
	if tr == nil || tr.units != units {
		tr = &trend{units: units}
		s.state[id] = tr
	}
	l, why := s.load(units, u)
	if l > s.Upper {
		if tr.above.IsZero() || l > tr.peak {
			tr.peak, tr.peakWhy = l, why
		}
		if tr.above.IsZero() {
			tr.above = now
		}
	} else {
		tr.above = time.Time{}
	}
	if l < s.Lower {
		if tr.below.IsZero() || l < tr.low {
			tr.low, tr.lowWhy = l, why
		}
		if tr.below.IsZero() {
			tr.below = now
		}
	} else {
		tr.below = time.Time{}
	}
	switch {
	case !tr.above.IsZero() && now.Sub(tr.above) >= s.UpAfter && units < maxUnits:
		to := nextUnits(units, +1)
		delete(s.state, id)
		return to, fmt.Sprintf("Scaled up from %d to %d capacity unit(s): load above %.0f%% for %s (peak %s).", units, to, 100*s.Upper, s.UpAfter, tr.peakWhy)
	case !tr.below.IsZero() && now.Sub(tr.below) >= s.DownAfter && units > minUnits:
		to := nextUnits(units, -1)
		delete(s.state, id)
		return to, fmt.Sprintf("Scaled down from %d to %d capacity unit(s): load below %.0f%% for %s (%s).", units, to, 100*s.Lower, s.DownAfter, tr.lowWhy)
	}
	return units, ""
}

// Forget drops what the scaler knows of id (it stopped).
func (s *Scaler) Forget(id string) { delete(s.state, id) }

// nextUnits is the valid unit count next to units, up or down.
func nextUnits(units, dir int) int {
	for i, u := range ValidUnits {
		if u >= units {
			if dir > 0 {
				if u > units {
					return u
				}
				if i+1 < len(ValidUnits) {
					return ValidUnits[i+1]
				}
				return u
			}
			if i > 0 {
				return ValidUnits[i-1]
			}
			return u
		}
	}
	return ValidUnits[len(ValidUnits)-1]
}

// ForUnits is the plan for a given number of units, with its reason.
func ForUnits(units int, reason string) Plan {
	mem := units * UnitMiB
	return Plan{
		Units: units, MemoryLimitMiB: mem, BufferMiB: mem / 4,
		FullLoadParallelism: min(49, max(4, 4*units)),
		Reason:              reason,
	}
}
