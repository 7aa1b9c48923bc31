package schedule

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Schedule expressions, as EventBridge Scheduler writes them, evaluated
// without AWS: `sluice serve` keeps local schedules in Redis and asks an Expr
// when each fires next. The syntax and the daylight-saving behaviour follow
// https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
// and the cron reference it links to.

// The years a cron expression may name. They also bound every search, so
// Next ends even for a cron that never matches (cron(0 0 30 FEB ? *)).
const (
	minYear = 1970
	maxYear = 2199
)

type kind int

const (
	kindAt kind = iota + 1
	kindRate
	kindCron
)

// Expr is a parsed schedule expression: at(…), rate(…) or cron(…), with
// the time zone it is evaluated in. Next may be called from several
// goroutines at once; Anchor may not run alongside them.
type Expr struct {
	kind kind
	loc  *time.Location

	at time.Time // kindAt: the one fire time

	period time.Duration // kindRate
	anchor time.Time     // kindRate: the first fire time; see Anchor

	cron *cronSpec // kindCron
}

// ParseExpr parses a schedule expression evaluated in time zone tz, an IANA
// name such as Europe/Paris; "" means UTC, as in EventBridge Scheduler.
// The error names the part that is wrong and the form it takes.
func ParseExpr(s string, tz string) (*Expr, error) {
	loc, err := loadZone(tz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	e := &Expr{loc: loc, anchor: time.Unix(0, 0)}
	if inner, ok := unwrap(s, "at"); ok {
		e.kind = kindAt
		e.at, err = parseAt(inner, loc)
	} else if inner, ok := unwrap(s, "rate"); ok {
		e.kind = kindRate
		e.period, err = parseRate(inner)
	} else if inner, ok := unwrap(s, "cron"); ok {
		e.kind = kindCron
		e.cron, err = parseCron(inner)
	} else {
		return nil, fmt.Errorf("%q is not a schedule expression: write at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(minutes hours day-of-month month day-of-week year)", s)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return e, nil
}

// Anchor sets when a rate schedule fires first: its StartDate, or the time
// it was created when it has none, since EventBridge Scheduler starts a rate
// schedule at once. It then fires every period after: start, start+period,
// start+2·period… Without Anchor a rate counts from 1970-01-01T00:00:00Z,
// which puts rate(5 minutes) on the five-minute marks. Anchor does nothing
// to at and cron schedules.
func (e *Expr) Anchor(start time.Time) { e.anchor = start }

// Next returns the first fire time strictly after after, and false when
// there is none: an at() that is not after it, a cron whose years are over.
//
// Daylight saving time follows EventBridge Scheduler, which evaluates cron
// and at on the wall clock of the schedule's time zone:
//   - a cron time the clock skips when it springs forward does not fire that
//     day (unlike Vixie cron, which runs it just after the change);
//   - a cron time the clock shows twice when it falls back fires once, the
//     first time;
//   - an at() time the clock skips fires as far past the change as it was
//     meant to be (at 03:30 on a night that jumps from 02:00 to 03:00, for
//     02:30), so a one-time schedule is not lost; one the clock shows twice
//     fires the first time;
//   - a rate counts elapsed time, not the clock: rate(1 day) is 24 hours
//     even across a 23- or 25-hour day.
//
// The time is in the schedule's zone, so it prints as its owner reads it.
func (e *Expr) Next(after time.Time) (time.Time, bool) {
	var next time.Time
	var ok bool
	switch e.kind {
	case kindAt:
		next, ok = e.at, e.at.After(after)
	case kindRate:
		next, ok = e.nextRate(after)
	default:
		next, ok = e.cron.next(after, e.loc)
	}
	if !ok {
		return time.Time{}, false
	}
	return next.In(e.loc), true
}

func (e *Expr) nextRate(after time.Time) (time.Time, bool) {
	if after.Before(e.anchor) {
		return e.anchor, true
	}
	// Sub saturates beyond about 292 years; give up rather than return a
	// time that is not after after.
	elapsed := after.Sub(e.anchor)
	if elapsed > math.MaxInt64-e.period {
		return time.Time{}, false
	}
	n := elapsed/e.period + 1
	return e.anchor.Add(n * e.period), true
}

func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	// "Local" is whatever machine runs sluice serve: not a zone AWS knows.
	if tz == "Local" {
		return nil, errors.New(`time zone "Local" is not an IANA name: write one like Europe/Paris, or leave it empty for UTC`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA name like Europe/Paris: %w", tz, err)
	}
	return loc, nil
}

// unwrap returns what is between name( and the closing ).
func unwrap(s, name string) (string, bool) {
	inner, ok := strings.CutPrefix(s, name+"(")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(inner, ")")
}

// --- at(yyyy-mm-ddThh:mm:ss) ---

const atLayout = "2006-01-02T15:04:05"

func parseAt(inner string, loc *time.Location) (time.Time, error) {
	// time.Parse accepts fractional seconds the layout does not show;
	// EventBridge does not.
	const want = "write a date and time like 2025-06-01T14:30:00, without a zone: the schedule's time zone applies"
	if len(inner) != len(atLayout) {
		return time.Time{}, fmt.Errorf("%q: %s", inner, want)
	}
	wall, err := time.Parse(atLayout, inner)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s", err, want)
	}
	t, _ := resolve(wall, loc)
	return t, nil
}

// --- rate(value unit) ---

type rateUnit struct {
	singular string
	length   time.Duration
}

var rateUnits = []rateUnit{{"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}}

func parseRate(inner string) (time.Duration, error) {
	parts := strings.Fields(inner)
	if len(parts) != 2 {
		return 0, errors.New("write rate(value unit), like rate(5 minutes) or rate(1 hour)")
	}
	value, unitText := parts[0], parts[1]
	n, err := parseNumber(value)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("value %q is not a positive whole number: write rate(value unit), like rate(5 minutes)", value)
	}
	for _, u := range rateUnits {
		plural := u.singular + "s"
		if unitText != u.singular && unitText != plural {
			continue
		}
		// EventBridge refuses rate(1 minutes) and rate(5 minute).
		if n == 1 && unitText != u.singular {
			return 0, fmt.Errorf("write rate(1 %s): a value of 1 takes the singular unit", u.singular)
		}
		if n != 1 && unitText != plural {
			return 0, fmt.Errorf("write rate(%d %s): a value other than 1 takes the plural unit", n, plural)
		}
		if int64(n) > math.MaxInt64/int64(u.length) {
			return 0, fmt.Errorf("value %d is too large for %s", n, plural)
		}
		return time.Duration(n) * u.length, nil
	}
	return 0, fmt.Errorf("unit %q is not minute, minutes, hour, hours, day or days", unitText)
}

// --- cron(minutes hours day-of-month month day-of-week year) ---

// cronSpec holds the values each field allows; day matches a date by
// day-of-month or by day-of-week, whichever is not ?.
type cronSpec struct {
	minute, hour, month, year valueSet
	day                       dayMatch
}

// valueSet[v] says whether value v is allowed.
type valueSet []bool

func (s valueSet) has(v int) bool { return v >= 0 && v < len(s) && s[v] }

// dayMatch reports whether a date, written in UTC, matches a day field.
type dayMatch func(date time.Time) bool

// field describes one cron field: its range, the names that stand for
// values (names[i] is min+i) and, for messages, the form it accepts.
type field struct {
	name     string
	min, max int
	names    []string
	noStep   bool
	form     string
}

var (
	minutesField = field{name: "minutes", min: 0, max: 59, form: "0-59 with , - * /"}
	hoursField   = field{name: "hours", min: 0, max: 23, form: "0-23 with , - * /"}
	domField     = field{name: "day-of-month", min: 1, max: 31,
		form: "1-31 with , - * / ?, or L, LW or a day and W (15W) alone"}
	monthField = field{name: "month", min: 1, max: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
		form:  "1-12 or JAN-DEC with , - * /"}
	// AWS numbers the days from Sunday (1) to Saturday (7), and its
	// reference gives day-of-week no / steps.
	dowField = field{name: "day-of-week", min: 1, max: 7,
		names:  []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"},
		noStep: true,
		form:   "1-7 (1 is SUN) or SUN-SAT with , - * ?, or L, a day and L (6L) or day#n (3#2) alone"}
	yearField = field{name: "year", min: minYear, max: maxYear, form: "1970-2199 with , - * /"}
)

func parseCron(inner string) (*cronSpec, error) {
	// Names and L, W are case-insensitive, as in the Quartz syntax AWS follows.
	parts := strings.Fields(strings.ToUpper(inner))
	if len(parts) != 6 {
		return nil, fmt.Errorf("%d fields, not 6: write cron(minutes hours day-of-month month day-of-week year), like cron(0 12 * * ? *)", len(parts))
	}
	c := &cronSpec{}
	var err error
	if c.minute, err = minutesField.parse(parts[0]); err != nil {
		return nil, err
	}
	if c.hour, err = hoursField.parse(parts[1]); err != nil {
		return nil, err
	}
	byMonthDay, err := parseDayOfMonth(parts[2])
	if err != nil {
		return nil, err
	}
	if c.month, err = monthField.parse(parts[3]); err != nil {
		return nil, err
	}
	byWeekDay, err := parseDayOfWeek(parts[4])
	if err != nil {
		return nil, err
	}
	if c.year, err = yearField.parse(parts[5]); err != nil {
		return nil, err
	}
	switch {
	case byMonthDay == nil && byWeekDay == nil:
		return nil, errors.New("day-of-month and day-of-week cannot both be ?: give one of them a value or *")
	case byMonthDay != nil && byWeekDay != nil:
		return nil, errors.New("day-of-month and day-of-week cannot both be given: set one of them to ?")
	case byMonthDay != nil:
		c.day = byMonthDay
	default:
		c.day = byWeekDay
	}
	return c, nil
}

// errorf says what is wrong with a field's text and what the field accepts.
func (f field) errorf(text, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s (accepted: %s)", f.name, text, fmt.Sprintf(format, args...), f.form)
}

// parse reads a list of items: *, a value, a range a-b, each with an
// optional /step.
func (f field) parse(text string) (valueSet, error) {
	set := make(valueSet, f.max+1)
	for _, item := range strings.Split(text, ",") {
		if err := f.addItem(set, item); err != nil {
			return nil, f.errorf(text, "%v", err)
		}
	}
	return set, nil
}

func (f field) addItem(set valueSet, item string) error {
	base, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		if f.noStep {
			return fmt.Errorf("%s takes no / steps", f.name)
		}
		n, err := parseNumber(stepText)
		if err != nil || n == 0 {
			return fmt.Errorf("step %q is not a positive whole number", stepText)
		}
		// A larger step could only repeat the start; refusing it also
		// keeps the loop below from overflowing.
		if span := f.max - f.min + 1; n > span {
			return fmt.Errorf("step %d is larger than the field's %d values", n, span)
		}
		step = n
	}
	lo, hi, err := f.parseRange(base, hasStep)
	if err != nil {
		return err
	}
	for v := lo; v <= hi; v += step {
		set[v] = true
	}
	return nil
}

// parseRange reads *, a-b or a; a with a step runs to the field's end, as
// in 5/15 (5, 20, 35, 50).
func (f field) parseRange(base string, hasStep bool) (lo, hi int, err error) {
	if base == "*" {
		return f.min, f.max, nil
	}
	loText, hiText, isRange := strings.Cut(base, "-")
	if lo, err = f.parseValue(loText); err != nil {
		return 0, 0, err
	}
	if !isRange {
		if hasStep {
			return lo, f.max, nil
		}
		return lo, lo, nil
	}
	if hi, err = f.parseValue(hiText); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %s runs backwards: ranges do not wrap around, so list both parts (%s-%d,%d-%s)", base, loText, f.max, f.min, hiText)
	}
	return lo, hi, nil
}

func (f field) parseValue(text string) (int, error) {
	for i, name := range f.names {
		if text == name {
			return f.min + i, nil
		}
	}
	n, err := parseNumber(text)
	if err != nil {
		return 0, err
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is out of range", n)
	}
	return n, nil
}

// parseNumber reads ASCII digits only: strconv.Atoi would also take a sign.
func parseNumber(text string) (int, error) {
	if text == "" {
		return 0, errors.New("a value is missing")
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", text)
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range", text)
	}
	return n, nil
}

// parseDayOfMonth returns nil for ?.
func parseDayOfMonth(text string) (dayMatch, error) {
	switch {
	case text == "?":
		return nil, nil
	case text == "L":
		return func(d time.Time) bool { return d.Day() == daysIn(d) }, nil
	case text == "LW":
		return func(d time.Time) bool { return d.Day() == nearestWeekday(d, daysIn(d)) }, nil
	case strings.HasSuffix(text, "W"):
		n, err := parseNumber(strings.TrimSuffix(text, "W"))
		if err != nil || n < 1 || n > 31 {
			return nil, domField.errorf(text, "W follows a single day 1-31, like 15W")
		}
		// A month without day n (31W in April) has no such weekday, just
		// as 31 does not fire in April.
		return func(d time.Time) bool { return n <= daysIn(d) && d.Day() == nearestWeekday(d, n) }, nil
	}
	set, err := domField.parse(text)
	if err != nil {
		return nil, err
	}
	return func(d time.Time) bool { return set.has(d.Day()) }, nil
}

// parseDayOfWeek returns nil for ?.
func parseDayOfWeek(text string) (dayMatch, error) {
	special := text == "L" || strings.HasSuffix(text, "L") || strings.Contains(text, "#")
	if special && strings.ContainsAny(text, ",-/*") {
		return nil, dowField.errorf(text, "L and # stand alone, not in a list or range")
	}
	switch {
	case text == "?":
		return nil, nil
	case text == "L":
		// L alone is the last day of the week: Saturday.
		return func(d time.Time) bool { return d.Weekday() == time.Saturday }, nil
	case strings.HasSuffix(text, "L"):
		day, err := dowField.parseValue(strings.TrimSuffix(text, "L"))
		if err != nil {
			return nil, dowField.errorf(text, "%v", err)
		}
		wd := weekday(day)
		// The last such day: a week later is next month.
		return func(d time.Time) bool { return d.Weekday() == wd && d.Day()+7 > daysIn(d) }, nil
	case strings.Contains(text, "#"):
		dayText, nthText, _ := strings.Cut(text, "#")
		day, err := dowField.parseValue(dayText)
		if err != nil {
			return nil, dowField.errorf(text, "%v", err)
		}
		nth, err := parseNumber(nthText)
		if err != nil || nth < 1 || nth > 5 {
			return nil, dowField.errorf(text, "the n of day#n is 1-5, as in 3#2 (the second Tuesday)")
		}
		wd := weekday(day)
		return func(d time.Time) bool { return d.Weekday() == wd && (d.Day()-1)/7+1 == nth }, nil
	}
	set, err := dowField.parse(text)
	if err != nil {
		return nil, err
	}
	return func(d time.Time) bool { return set.has(int(d.Weekday()) + 1) }, nil
}

// weekday turns AWS's 1 (Sunday) to 7 (Saturday) into Go's.
func weekday(day int) time.Weekday { return time.Weekday(day - 1) }

// daysIn returns the number of days in d's month.
func daysIn(d time.Time) int {
	return time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// nearestWeekday returns the weekday (Monday to Friday) nearest day n of
// d's month, without leaving the month: a Saturday the 1st moves to Monday
// the 3rd, a Sunday the last to Friday.
func nearestWeekday(d time.Time, n int) int {
	last := daysIn(d)
	switch time.Date(d.Year(), d.Month(), n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// next walks the wall clock of loc forward from after, one matching minute
// at a time, until one exists (not skipped by a spring-forward) and falls
// after after (not the second showing of a fall-back minute, which fired
// the first time).
func (c *cronSpec) next(after time.Time, loc *time.Location) (time.Time, bool) {
	w := wallClock(after.In(loc)).Truncate(time.Minute).Add(time.Minute)
	for {
		var ok bool
		if w, ok = c.nextWall(w); !ok {
			return time.Time{}, false
		}
		if t, exists := resolve(w, loc); exists && t.After(after) {
			return t, true
		}
		w = w.Add(time.Minute)
	}
}

// nextWall returns the first wall-clock minute from w on that every field
// matches. Wall-clock times are written in UTC, where each day has 24
// hours. Each step moves to the start of the next year, month, day, hour
// or minute, so the search ends by year 2199.
func (c *cronSpec) nextWall(w time.Time) (time.Time, bool) {
	if w.Year() < minYear {
		w = time.Date(minYear, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for w.Year() <= maxYear {
		y, m, d := w.Date()
		switch {
		case !c.year.has(y):
			w = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !c.month.has(int(m)):
			w = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.day(w):
			w = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		case !c.hour.has(w.Hour()):
			w = time.Date(y, m, d, w.Hour()+1, 0, 0, 0, time.UTC)
		case !c.minute.has(w.Minute()):
			w = w.Add(time.Minute)
		default:
			return w, true
		}
	}
	return time.Time{}, false
}

// wallClock returns what t's clock shows, written in UTC.
func wallClock(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// resolve returns the instant loc's clocks show wall (written in UTC).
// exists is false when the clocks skip wall; t is then the instant they
// show wall plus the gap. When they show wall twice, t is the first.
func resolve(wall time.Time, loc *time.Location) (t time.Time, exists bool) {
	// The instant is within 14 hours of wall (offsets run from -12 to +14
	// hours) and no zone changes its offset twice in 28 hours, so the
	// offsets in force 14 hours either side are the only candidates. The
	// earlier one is tried first: when the clocks go back, it is the
	// larger offset, so the earlier instant.
	_, before := wall.Add(-14 * time.Hour).In(loc).Zone()
	_, after := wall.Add(14 * time.Hour).In(loc).Zone()
	for _, offset := range []int{before, after} {
		t := wall.Add(-time.Duration(offset) * time.Second)
		if wallClock(t.In(loc)).Equal(wall) {
			return t, true
		}
	}
	// Skipped: read wall with the offset from before the change, which
	// lands as far past the change as wall was.
	return wall.Add(-time.Duration(before) * time.Second), false
}
