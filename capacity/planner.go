package capacity

import (
	"fmt"
	"strings"
)

// ValidUnits are the capacity unit counts DMS Serverless accepts for
// MinCapacityUnits and MaxCapacityUnits.
var ValidUnits = []int{1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384}

// Metadata is what the analysis of a source found about the tables a
// replication selects.
type Metadata struct {
	Tables        int
	Rows          int64
	Bytes         int64
	LOBColumns    int // text, bytea, blob, json … columns
	TablesWithout int // tables without a primary key
	// ChangeBytesPerSecond is the source's change rate, sampled from the
	// WAL position or binlog offset over a short window.
	ChangeBytesPerSecond float64
	// FullLoad says whether the replication copies the tables first.
	FullLoad bool
}

// step is one rung of a sizing ladder: up to Limit, Units are enough.
type step struct {
	Limit float64
	Units int
}

// The sizing ladders. A unit is 2 GiB and about one core's worth of
// copying (some 100 MB/s) or applying changes (some 3 MiB/s of WAL or
// binlog on this kind of machine); the rungs leave head room so a plan is
// not resized by the first burst.
var (
	loadLadder = []step{{1 << 30, 1}, {10 << 30, 2}, {100 << 30, 4}, {1 << 40, 8}, {4 << 40, 16}}
	cdcLadder  = []step{{1 << 20, 1}, {4 << 20, 2}, {16 << 20, 4}, {48 << 20, 8}, {96 << 20, 16}, {192 << 20, 32}}
)

func climb(ladder []step, v float64) int {
	for _, s := range ladder {
		if v <= s.Limit {
			return s.Units
		}
	}
	return 2 * ladder[len(ladder)-1].Units
}

// validAtLeast is the smallest valid unit count of at least n.
func validAtLeast(n int) int {
	for _, u := range ValidUnits {
		if u >= n {
			return u
		}
	}
	return ValidUnits[len(ValidUnits)-1]
}

// Size picks the capacity a replication needs from what the source holds
// and how fast it changes, within the config's ComputeConfig (minUnits and
// maxUnits; zero means DMS's defaults, 1 and 384): units, the process's
// memory, the change buffer (a quarter of it, for MemoryLimitTotal), the
// full-load parallelism, and a sentence that says why.
func Size(m Metadata, minUnits, maxUnits int) (Plan, error) {
	if minUnits == 0 {
		minUnits = 1
	}
	if maxUnits == 0 {
		maxUnits = ValidUnits[len(ValidUnits)-1]
	}
	for _, u := range []int{minUnits, maxUnits} {
		if validAtLeast(u) != u {
			return Plan{}, fmt.Errorf("%d is not a valid capacity: use one of %v", u, ValidUnits)
		}
	}
	if minUnits > maxUnits {
		return Plan{}, fmt.Errorf("MinCapacityUnits %d is above MaxCapacityUnits %d", minUnits, maxUnits)
	}
	var why []string
	need := 1
	if m.FullLoad {
		load := climb(loadLadder, float64(m.Bytes))
		if m.LOBColumns > 0 && load < 2 && m.Bytes > 256<<20 {
			// LOBs are copied a value at a time: more memory per row.
			load = 2
		}
		need = max(need, load)
		why = append(why, fmt.Sprintf("%s in %d table(s) needs %d for the full load", bytes(m.Bytes), m.Tables, load))
	}
	cdc := climb(cdcLadder, m.ChangeBytesPerSecond)
	need = max(need, cdc)
	why = append(why, fmt.Sprintf("%s/s of changes needs %d", bytes(int64(m.ChangeBytesPerSecond)), cdc))
	units := validAtLeast(need)
	switch {
	case units < minUnits:
		units = minUnits
		why = append(why, fmt.Sprintf("raised to MinCapacityUnits %d", minUnits))
	case units > maxUnits:
		units = maxUnits
		why = append(why, fmt.Sprintf("capped at MaxCapacityUnits %d", maxUnits))
	}
	return ForUnits(units, fmt.Sprintf("Provisioned %d capacity unit(s): %s.", units, strings.Join(why, "; "))), nil
}

// bytes writes a size the way people read it.
func bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, suffix := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	i := -1
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, suffix[i])
}
