package schedule

import (
	"strings"
	"testing"
	"time"
)

// none, as the last wanted time, says Next finds nothing after the one
// before it.
const none = "none"

// nextCases give each expression's fire times in turn: want[0] is the first
// after after, want[1] the first after want[0], and so on. The calendar
// facts (which weekday, which DST change) were checked with python3's
// calendar module and zdump, not with this package.
var nextCases = []struct {
	why    string
	expr   string
	tz     string
	anchor string // rate only
	after  string
	want   []string
}{
	// cron: plain fields
	{"strictly after: a fire time equal to after is not next",
		"cron(0 12 * * ? *)", "", "", "2025-01-01T12:00:00Z",
		[]string{"2025-01-02T12:00:00Z", "2025-01-03T12:00:00Z"}},
	{"a second before the minute still gets that minute",
		"cron(0 10 * * ? *)", "", "", "2025-01-01T09:59:59Z",
		[]string{"2025-01-01T10:00:00Z"}},
	{"seconds in after do not shift the fire time off the minute",
		"cron(15 12 * * ? *)", "", "", "2025-01-01T12:14:30.5Z",
		[]string{"2025-01-01T12:15:00Z", "2025-01-02T12:15:00Z"}},
	{"MON-FRI skips the weekend (2025-01-03 is a Friday)",
		"cron(0 18 ? * MON-FRI *)", "", "", "2025-01-03T18:00:00Z",
		[]string{"2025-01-06T18:00:00Z", "2025-01-07T18:00:00Z"}},
	{"first of the month crosses a month end",
		"cron(0 8 1 * ? *)", "", "", "2025-01-31T00:00:00Z",
		[]string{"2025-02-01T08:00:00Z", "2025-03-01T08:00:00Z"}},
	{"0/15 is every quarter hour from 0",
		"cron(0/15 * * * ? *)", "", "", "2025-01-01T00:07:00Z",
		[]string{"2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z", "2025-01-01T00:45:00Z", "2025-01-01T01:00:00Z"}},
	{"5/20 starts at 5 and runs to the end of the hour",
		"cron(5/20 9 * * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-01T09:05:00Z", "2025-01-01T09:25:00Z", "2025-01-01T09:45:00Z", "2025-01-02T09:05:00Z"}},
	{"steps within hours 8-17 on weekdays: Friday's last then Monday's first",
		"cron(0/5 8-17 ? * MON-FRI *)", "", "", "2025-01-03T17:50:00Z",
		[]string{"2025-01-03T17:55:00Z", "2025-01-06T08:00:00Z"}},
	{"a range with a step: hours 0-12/4 are 0, 4, 8, 12",
		"cron(30 0-12/4 * * ? *)", "", "", "2025-01-01T00:30:00Z",
		[]string{"2025-01-01T04:30:00Z", "2025-01-01T08:30:00Z", "2025-01-01T12:30:00Z", "2025-01-02T00:30:00Z"}},
	{"lists in minutes and hours",
		"cron(0,30 9,17 * * ? *)", "", "", "2025-01-01T09:00:00Z",
		[]string{"2025-01-01T09:30:00Z", "2025-01-01T17:00:00Z", "2025-01-01T17:30:00Z", "2025-01-02T09:00:00Z"}},
	{"day-of-month */10 is 1, 11, 21, 31",
		"cron(0 0 */10 * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-11T00:00:00Z", "2025-01-21T00:00:00Z", "2025-01-31T00:00:00Z", "2025-02-01T00:00:00Z"}},
	{"day-of-month range with a step: 1-10/3 is 1, 4, 7, 10",
		"cron(0 0 1-10/3 * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-04T00:00:00Z", "2025-01-07T00:00:00Z", "2025-01-10T00:00:00Z", "2025-02-01T00:00:00Z"}},

	// cron: month ends and leap years
	{"the 31st skips the months without one",
		"cron(0 0 31 * ? *)", "", "", "2025-01-31T00:00:00Z",
		[]string{"2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z"}},
	{"L is each month's last day",
		"cron(0 0 L * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-31T00:00:00Z", "2025-04-30T00:00:00Z"}},
	{"L in February is the 29th in a leap year",
		"cron(0 0 L 2 ? *)", "", "", "2024-01-01T00:00:00Z",
		[]string{"2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"}},
	{"29 February waits for the next leap year",
		"cron(0 0 29 2 ? *)", "", "", "2024-03-01T00:00:00Z",
		[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
	{"2100 is not a leap year (divisible by 100, not 400)",
		"cron(0 0 29 FEB ? 2096-2199)", "", "", "2096-03-01T00:00:00Z",
		[]string{"2104-02-29T00:00:00Z"}},
	{"a day no month has never fires, and the search ends",
		"cron(0 0 30 2 ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{none}},

	// cron: W
	{"15W: a Saturday 15th moves to Friday, a Sunday 15th to Monday",
		"cron(0 0 15W * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-15T00:00:00Z", "2025-02-14T00:00:00Z", "2025-03-14T00:00:00Z", "2025-04-15T00:00:00Z", "2025-05-15T00:00:00Z", "2025-06-16T00:00:00Z"}},
	{"1W: a Saturday 1st moves forward to Monday the 3rd, not into last month",
		"cron(0 0 1W * ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-02-03T00:00:00Z", "2025-03-03T00:00:00Z", "2025-04-01T00:00:00Z"}},
	{"30W: a Sunday 30th that ends the month moves back to Friday",
		"cron(0 0 30W 11 ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-11-28T00:00:00Z"}},
	{"31W: months without a 31st have none; a Saturday or last-day Sunday moves back",
		"cron(0 0 31W * ? *)", "", "", "2025-03-31T00:00:00Z",
		[]string{"2025-05-30T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-29T00:00:00Z"}},
	{"LW: the last weekday of each month",
		"cron(0 0 LW * ? *)", "", "", "2025-04-30T00:00:00Z",
		[]string{"2025-05-30T00:00:00Z", "2025-06-30T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-29T00:00:00Z"}},

	// cron: day-of-week L and #
	{"3#2 is the second Tuesday",
		"cron(0 9 ? * 3#2 *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-14T09:00:00Z", "2025-02-11T09:00:00Z", "2025-03-11T09:00:00Z"}},
	{"MON#1 takes a name",
		"cron(0 9 ? * MON#1 *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-06T09:00:00Z", "2025-02-03T09:00:00Z", "2025-03-03T09:00:00Z"}},
	{"6#5, the fifth Friday, skips months with four",
		"cron(0 9 ? * 6#5 *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-31T09:00:00Z", "2025-05-30T09:00:00Z"}},
	{"6L is the last Friday",
		"cron(0 9 ? * 6L *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-31T09:00:00Z", "2025-02-28T09:00:00Z", "2025-03-28T09:00:00Z", "2025-04-25T09:00:00Z"}},
	{"L alone in day-of-week is the week's last day, Saturday",
		"cron(0 0 ? * L *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-04T00:00:00Z", "2025-01-11T00:00:00Z"}},
	{"day numbers count from Sunday = 1: 1,7 is the weekend",
		"cron(0 0 ? * 1,7 *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z", "2025-01-11T00:00:00Z"}},
	{"names are case-insensitive",
		"cron(0 0 ? jan mon-fri *)", "", "", "2025-01-03T00:00:00Z",
		[]string{"2025-01-06T00:00:00Z"}},

	// cron: months and years
	{"named months in a list",
		"cron(0 0 1 JAN,JUL ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
	{"a step from a named month: JAN/3 is each quarter",
		"cron(0 0 1 JAN/3 ? *)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-04-01T00:00:00Z", "2025-07-01T00:00:00Z", "2025-10-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
	{"a single year: nothing after it",
		"cron(0 0 1 1 ? 2025)", "", "", "2024-06-01T00:00:00Z",
		[]string{"2025-01-01T00:00:00Z", none}},
	{"a list of years",
		"cron(0 0 1 1 ? 2025,2027)", "", "", "2025-06-01T00:00:00Z",
		[]string{"2027-01-01T00:00:00Z", none}},
	{"a step in years",
		"cron(0 0 1 1 ? 2030/5)", "", "", "2031-01-01T00:00:00Z",
		[]string{"2035-01-01T00:00:00Z", "2040-01-01T00:00:00Z"}},
	{"before 1970 the first fire time is in 1970",
		"cron(0 0 1 1 ? *)", "", "", "1900-01-01T00:00:00Z",
		[]string{"1970-01-01T00:00:00Z"}},
	{"the last minute AWS can name, and nothing after",
		"cron(59 23 31 12 ? *)", "", "", "2199-12-31T23:58:00Z",
		[]string{"2199-12-31T23:59:00Z", none}},

	// cron: time zones
	{"Paris in winter is UTC+1",
		"cron(0 9 * * ? *)", "Europe/Paris", "", "2025-01-15T00:00:00Z",
		[]string{"2025-01-15T09:00:00+01:00"}},
	{"Paris in summer is UTC+2",
		"cron(0 9 * * ? *)", "Europe/Paris", "", "2025-07-15T00:00:00Z",
		[]string{"2025-07-15T09:00:00+02:00"}},
	{"a half-hour offset: midnight in Kolkata",
		"cron(0 0 * * ? *)", "Asia/Kolkata", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-02T00:00:00+05:30"}},
	{"the day is the zone's: 23:30 UTC on the 31st is already the 1st in Tokyo",
		"cron(0 9 1 * ? *)", "Asia/Tokyo", "", "2025-01-31T23:30:00Z",
		[]string{"2025-02-01T09:00:00+09:00"}},

	// cron: daylight saving time
	{"spring forward (New York, 2025-03-09 02:00 → 03:00): 02:30 does not exist, so that day is skipped",
		"cron(30 2 * * ? *)", "America/New_York", "", "2025-03-08T12:00:00-05:00",
		[]string{"2025-03-10T02:30:00-04:00"}},
	{"spring forward: hourly goes from 01:00 EST to 03:00 EDT, an hour later",
		"cron(0 * * * ? *)", "America/New_York", "", "2025-03-09T00:30:00-05:00",
		[]string{"2025-03-09T01:00:00-05:00", "2025-03-09T03:00:00-04:00"}},
	{"fall back (New York, 2025-11-02 02:00 → 01:00): 01:30 shows twice and fires once, the first time",
		"cron(30 1 * * ? *)", "America/New_York", "", "2025-11-01T12:00:00-04:00",
		[]string{"2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"}},
	{"fall back: every 30 minutes does not repeat 01:00 and 01:30 EST",
		"cron(0/30 * * * ? *)", "America/New_York", "", "2025-11-02T00:45:00-04:00",
		[]string{"2025-11-02T01:00:00-04:00", "2025-11-02T01:30:00-04:00", "2025-11-02T02:00:00-05:00"}},
	{"fall back: asked during the repeated hour, the next is after it",
		"cron(0/30 * * * ? *)", "America/New_York", "", "2025-11-02T01:10:00-05:00",
		[]string{"2025-11-02T02:00:00-05:00"}},
	{"London's change is on the last Sunday of March: 01:30 that day does not exist",
		"cron(30 1 ? * 1L *)", "Europe/London", "", "2025-03-01T00:00:00Z",
		[]string{"2025-04-27T01:30:00+01:00"}},
	{"London's last Sunday of October: 01:30 shows twice, fires in BST",
		"cron(30 1 ? * 1L *)", "Europe/London", "", "2025-10-01T00:00:00Z",
		[]string{"2025-10-26T01:30:00+01:00", "2025-11-30T01:30:00Z"}},
	{"a half-hour change (Lord Howe, 2025-10-05 02:00 → 02:30): 02:15 is skipped",
		"cron(15 2 * * ? *)", "Australia/Lord_Howe", "", "2025-10-04T12:00:00+10:30",
		[]string{"2025-10-06T02:15:00+11:00"}},
	{"a half-hour fall back (Lord Howe, 2025-04-06 02:00 → 01:30): 01:45 fires once",
		"cron(45 1 * * ? *)", "Australia/Lord_Howe", "", "2025-04-05T12:00:00+11:00",
		[]string{"2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"}},
	{"southern hemisphere fall back in April (Sydney, 03:00 → 02:00)",
		"cron(30 2 * * ? *)", "Australia/Sydney", "", "2025-04-05T12:00:00+11:00",
		[]string{"2025-04-06T02:30:00+11:00", "2025-04-07T02:30:00+10:00"}},

	// at
	{"at in the future fires once",
		"at(2030-01-01T00:00:00)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2030-01-01T00:00:00Z", none}},
	{"at in the past never fires",
		"at(2020-01-01T00:00:00)", "", "", "2025-01-01T00:00:00Z",
		[]string{none}},
	{"at equal to after is not after it",
		"at(2025-01-01T00:00:00)", "", "", "2025-01-01T00:00:00Z",
		[]string{none}},
	{"at keeps its seconds",
		"at(2025-01-01T00:00:59)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2025-01-01T00:00:59Z"}},
	{"at is read in the schedule's zone",
		"at(2025-06-01T14:30:00)", "Europe/Paris", "", "2025-01-01T00:00:00Z",
		[]string{"2025-06-01T14:30:00+02:00"}},
	{"at in a skipped hour fires as the clock moves past it: 02:30 is 03:30 EDT",
		"at(2025-03-09T02:30:00)", "America/New_York", "", "2025-01-01T00:00:00Z",
		[]string{"2025-03-09T03:30:00-04:00"}},
	{"at in a repeated hour fires the first time",
		"at(2025-11-02T01:30:00)", "America/New_York", "", "2025-01-01T00:00:00Z",
		[]string{"2025-11-02T01:30:00-04:00", none}},
	{"at on 29 February of a leap year",
		"at(2028-02-29T12:00:00)", "", "", "2025-01-01T00:00:00Z",
		[]string{"2028-02-29T12:00:00Z"}},

	// rate
	{"rate counts from the anchor, seconds and all",
		"rate(5 minutes)", "", "2025-01-01T10:03:17Z", "2025-01-01T10:03:17Z",
		[]string{"2025-01-01T10:08:17Z", "2025-01-01T10:13:17Z"}},
	{"before the anchor the next is the anchor: AWS fires a new rate schedule at once",
		"rate(5 minutes)", "", "2025-01-01T10:03:17Z", "2025-01-01T09:00:00Z",
		[]string{"2025-01-01T10:03:17Z", "2025-01-01T10:08:17Z"}},
	{"just before a fire time gives that fire time",
		"rate(1 minute)", "", "2025-01-01T00:00:00Z", "2025-01-01T00:41:59.999Z",
		[]string{"2025-01-01T00:42:00Z", "2025-01-01T00:43:00Z"}},
	{"rate(1 hour), long after the anchor",
		"rate(1 hour)", "", "2020-01-01T00:30:00Z", "2025-01-01T00:00:00Z",
		[]string{"2025-01-01T00:30:00Z", "2025-01-01T01:30:00Z"}},
	{"rate(2 hours)",
		"rate(2 hours)", "", "2025-01-01T00:00:00Z", "2025-01-01T03:00:00Z",
		[]string{"2025-01-01T04:00:00Z", "2025-01-01T06:00:00Z"}},
	{"rate(7 days)",
		"rate(7 days)", "", "2025-01-01T06:00:00Z", "2025-01-01T06:00:00Z",
		[]string{"2025-01-08T06:00:00Z", "2025-01-15T06:00:00Z"}},
	{"rate(1 day) is 24 hours, so across spring forward the clock reads an hour later",
		"rate(1 day)", "America/New_York", "2025-03-08T09:00:00-05:00", "2025-03-08T09:00:00-05:00",
		[]string{"2025-03-09T10:00:00-04:00"}},
	{"without Anchor a rate counts from the Unix epoch",
		"rate(5 minutes)", "", "", "2025-01-01T00:01:00Z",
		[]string{"2025-01-01T00:05:00Z"}},
}

func TestNext(t *testing.T) {
	for _, c := range nextCases {
		t.Run(c.expr+"/"+c.why, func(t *testing.T) {
			e, err := ParseExpr(c.expr, c.tz)
			if err != nil {
				t.Fatalf("ParseExpr: %v", err)
			}
			if c.anchor != "" {
				e.Anchor(mustTime(t, c.anchor))
			}
			after := mustTime(t, c.after)
			for _, want := range c.want {
				got, ok := e.Next(after)
				if want == none {
					if ok {
						t.Fatalf("Next(%s) = %s, want none", after.Format(time.RFC3339), got.Format(time.RFC3339))
					}
					return
				}
				wantT := mustTime(t, want)
				if !ok || !got.Equal(wantT) {
					t.Fatalf("Next(%s) = %s, %v; want %s", after.Format(time.RFC3339), got.Format(time.RFC3339), ok, want)
				}
				after = got
			}
		})
	}
}

func TestNextIsInScheduleZone(t *testing.T) {
	// Logs print the time as the schedule's owner reads it.
	e, err := ParseExpr("cron(0 9 * * ? *)", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := e.Next(mustTime(t, "2025-01-15T00:00:00Z"))
	if got.Location().String() != "Europe/Paris" || got.Hour() != 9 {
		t.Errorf("Next = %s, want 09:00 in Europe/Paris", got)
	}
}

func TestParseExprErrors(t *testing.T) {
	cases := []struct {
		why  string
		expr string
		tz   string
		want string // a substring of the error
	}{
		// the three forms
		{"empty", "", "", "is not a schedule expression"},
		{"not a form AWS knows", "every 5 minutes", "", "write at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron("},
		{"the form names are lower case", "RATE(5 minutes)", "", "is not a schedule expression"},
		{"no closing parenthesis", "cron(0 12 * * ? *", "", "is not a schedule expression"},
		{"unknown zone", "rate(5 minutes)", "Mars/Olympus_Mons", `time zone "Mars/Olympus_Mons" is not an IANA name`},
		{"Local depends on the machine", "rate(5 minutes)", "Local", `time zone "Local" is not an IANA name`},

		// rate
		{"1 takes the singular", "rate(1 minutes)", "", "rate(1 minutes): write rate(1 minute): a value of 1 takes the singular unit"},
		{"1 takes the singular hour", "rate(1 hours)", "", "write rate(1 hour)"},
		{"1 takes the singular day", "rate(1 days)", "", "write rate(1 day)"},
		{"other values take the plural", "rate(5 minute)", "", "write rate(5 minutes): a value other than 1 takes the plural unit"},
		{"plural days", "rate(2 day)", "", "write rate(2 days)"},
		{"zero", "rate(0 minutes)", "", `value "0" is not a positive whole number`},
		{"negative", "rate(-1 minutes)", "", `value "-1" is not a positive whole number`},
		{"a sign", "rate(+5 minutes)", "", `value "+5" is not a positive whole number`},
		{"a fraction", "rate(1.5 hours)", "", `value "1.5" is not a positive whole number`},
		{"a word", "rate(five minutes)", "", `value "five" is not a positive whole number`},
		{"weeks are not a unit", "rate(2 weeks)", "", `unit "weeks" is not minute, minutes, hour, hours, day or days`},
		{"seconds are not a unit", "rate(30 seconds)", "", `unit "seconds"`},
		{"units are lower case", "rate(5 Minutes)", "", `unit "Minutes"`},
		{"no unit", "rate(5)", "", "write rate(value unit)"},
		{"too many words", "rate(5 minutes please)", "", "write rate(value unit)"},
		{"empty rate", "rate()", "", "write rate(value unit)"},
		{"a period that overflows", "rate(999999999999 days)", "", "is too large for days"},

		// at
		{"a date without a time", "at(2025-01-01)", "", "write a date and time like 2025-06-01T14:30:00"},
		{"no seconds", "at(2025-01-01T00:00)", "", "write a date and time like"},
		{"a space, not T", "at(2025-01-01 00:00:00)", "", "write a date and time like"},
		{"a zone in the time", "at(2025-01-01T00:00:00Z)", "", "without a zone"},
		{"fractional seconds", "at(2025-01-01T00:00:00.5)", "", "write a date and time like"},
		{"month 13", "at(2025-13-01T00:00:00)", "", "month out of range"},
		{"30 February", "at(2025-02-30T00:00:00)", "", "day out of range"},
		{"29 February of a common year", "at(2025-02-29T00:00:00)", "", "day out of range"},
		{"hour 24", "at(2025-01-01T24:00:00)", "", "hour out of range"},

		// cron: shape and the ? rule
		{"five fields (Unix cron)", "cron(0 12 * * ?)", "", "5 fields, not 6: write cron(minutes hours day-of-month month day-of-week year)"},
		{"seven fields (Quartz seconds)", "cron(0 0 12 * * ? *)", "", "7 fields, not 6"},
		{"empty cron", "cron()", "", "0 fields, not 6"},
		{"both day fields given", "cron(0 12 * * * *)", "", "cron(0 12 * * * *): day-of-month and day-of-week cannot both be given: set one of them to ?"},
		{"both day fields given as values", "cron(0 12 1 * MON *)", "", "cannot both be given: set one of them to ?"},
		{"both day fields ?", "cron(0 12 ? * ? *)", "", "day-of-month and day-of-week cannot both be ?"},
		{"a field's error comes before the ? rule", "cron(0 12 32 * * *)", "", `day-of-month "32": 32 is out of range`},

		// cron: values out of range
		{"minute 60", "cron(60 0 * * ? *)", "", `minutes "60": 60 is out of range (accepted: 0-59 with , - * /)`},
		{"hour 24", "cron(0 24 * * ? *)", "", `hours "24": 24 is out of range (accepted: 0-23`},
		{"day 0", "cron(0 0 0 * ? *)", "", `day-of-month "0": 0 is out of range (accepted: 1-31`},
		{"day 32", "cron(0 0 32 * ? *)", "", `day-of-month "32": 32 is out of range`},
		{"month 0", "cron(0 0 1 0 ? *)", "", `month "0": 0 is out of range (accepted: 1-12 or JAN-DEC`},
		{"month 13", "cron(0 0 1 13 ? *)", "", `month "13": 13 is out of range`},
		{"an unknown month name", "cron(0 0 1 JANUARY ? *)", "", `month "JANUARY": "JANUARY" is not a number`},
		{"day-of-week 0 (Unix Sunday)", "cron(0 0 ? * 0 *)", "", `day-of-week "0": 0 is out of range (accepted: 1-7 (1 is SUN)`},
		{"day-of-week 8", "cron(0 0 ? * 8 *)", "", `day-of-week "8": 8 is out of range`},
		{"an unknown day name", "cron(0 0 ? * SUNDAY *)", "", `day-of-week "SUNDAY"`},
		{"year 1969", "cron(0 0 1 1 ? 1969)", "", `year "1969": 1969 is out of range (accepted: 1970-2199`},
		{"year 2200", "cron(0 0 1 1 ? 2200)", "", `year "2200": 2200 is out of range`},
		{"a huge number", "cron(99999999999999999999 0 1 1 ? *)", "", "is out of range"},
		{"a negative number", "cron(-1 0 * * ? *)", "", `minutes "-1": a value is missing`},

		// cron: lists, ranges, steps
		{"an empty list item", "cron(0,,30 0 * * ? *)", "", `minutes "0,,30": a value is missing`},
		{"a backwards range", "cron(0 22-2 * * ? *)", "", `hours "22-2": range 22-2 runs backwards: ranges do not wrap around, so list both parts (22-23,0-2)`},
		{"a backwards named range", "cron(0 0 ? * FRI-MON *)", "", "range FRI-MON runs backwards"},
		{"step 0", "cron(*/0 0 * * ? *)", "", `step "0" is not a positive whole number`},
		{"a step with no number", "cron(0/ 0 * * ? *)", "", `step "" is not a positive whole number`},
		{"a step larger than the field", "cron(0/61 0 * * ? *)", "", "step 61 is larger than the field's 60 values"},
		{"two steps", "cron(0/5/5 0 * * ? *)", "", `step "5/5" is not a positive whole number`},
		{"a half-open range", "cron(5- 0 * * ? *)", "", "a value is missing"},
		{"day-of-week takes no steps in AWS's reference", "cron(0 0 ? * 1/2 *)", "", "day-of-week takes no / steps"},
		{"? outside the day fields", "cron(? 0 * * ? *)", "", `minutes "?"`},

		// cron: L, W and #
		{"L in a list", "cron(0 0 1,L * ? *)", "", `day-of-month "1,L": "L" is not a number`},
		{"L with an offset (Quartz's L-3) is not in AWS's reference", "cron(0 0 L-3 * ? *)", "", `day-of-month "L-3"`},
		{"W after a day beyond 31", "cron(0 0 32W * ? *)", "", `day-of-month "32W": W follows a single day 1-31, like 15W`},
		{"W after day 0", "cron(0 0 0W * ? *)", "", "W follows a single day"},
		{"W alone", "cron(0 0 W * ? *)", "", "W follows a single day"},
		{"W in a list", "cron(0 0 1,15W * ? *)", "", "W follows a single day"},
		{"W in day-of-week", "cron(0 0 ? * 2W *)", "", `day-of-week "2W"`},
		{"L in the month field", "cron(0 0 1 L ? *)", "", `month "L"`},
		{"# beyond the fifth", "cron(0 0 ? * 3#6 *)", "", `day-of-week "3#6": the n of day#n is 1-5`},
		{"# zero", "cron(0 0 ? * 3#0 *)", "", "the n of day#n is 1-5"},
		{"# on day 8", "cron(0 0 ? * 8#1 *)", "", `day-of-week "8#1": 8 is out of range`},
		{"two # in a list (AWS: one expression only)", "cron(0 0 ? * 3#1,6#3 *)", "", "L and # stand alone, not in a list or range"},
		{"nL in a range", "cron(0 0 ? * 2-6L *)", "", "L and # stand alone"},
		{"nL on day 9", "cron(0 0 ? * 9L *)", "", `day-of-week "9L": 9 is out of range`},
		{"# in day-of-month", "cron(0 0 3#2 * ? *)", "", `day-of-month "3#2"`},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			e, err := ParseExpr(c.expr, c.tz)
			if err == nil {
				t.Fatalf("ParseExpr(%q, %q) = %+v, want an error with %q", c.expr, c.tz, e, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseExpr(%q, %q) error\n  %v\nwant it to contain\n  %s", c.expr, c.tz, err, c.want)
			}
		})
	}
}

// fuzzZones are the zones the fuzz test picks from: UTC, both hemispheres,
// a half-hour change, and Samoa, which skipped all of 2011-12-30.
var fuzzZones = []string{"", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"}

func FuzzParseExpr(f *testing.F) {
	for _, c := range nextCases {
		f.Add(c.expr, uint8(0), mustTime(f, c.after).Unix(), int64(1735689600))
	}
	f.Add("cron(0 0 29 2 ? 2100)", uint8(0), int64(0), int64(0))
	f.Add("cron(*/1 * * * ? *)", uint8(5), int64(1325152800), int64(0)) // Samoa's lost day
	f.Add("cron(0 0 ? * 7#5 2199)", uint8(3), int64(-1<<62), int64(0))
	f.Add("rate(1 minute)", uint8(1), int64(1<<62), int64(-1<<62))
	f.Fuzz(func(t *testing.T, s string, zone uint8, afterUnix, anchorUnix int64) {
		e, err := ParseExpr(s, fuzzZones[int(zone)%len(fuzzZones)])
		if err != nil {
			return
		}
		e.Anchor(time.Unix(anchorUnix, 0))
		after := time.Unix(afterUnix, 0)
		got, ok := nextWithin(t, e, after)
		if !ok {
			return
		}
		if !got.After(after) {
			t.Fatalf("%s: Next(%s) = %s, not after it", s, after, got)
		}
		if e.kind == kindCron && (got.Year() > maxYear || got.Second() != 0) {
			t.Fatalf("%s: Next(%s) = %s, past 2199 or off the minute", s, after, got)
		}
		// Next gives the first fire time: asking from just before it
		// gives it again.
		again, ok := nextWithin(t, e, got.Add(-time.Nanosecond))
		if !ok || !again.Equal(got) {
			t.Fatalf("%s: Next(%s) = %s but Next(just before) = %s, %v", s, after, got, again, ok)
		}
	})
}

// nextWithin calls Next, failing the test if it does not return: the
// search must end (by year 2199) whatever the expression.
func nextWithin(t *testing.T, e *Expr, after time.Time) (time.Time, bool) {
	t.Helper()
	type result struct {
		t  time.Time
		ok bool
	}
	done := make(chan result, 1)
	go func() {
		next, ok := e.Next(after)
		done <- result{next, ok}
	}()
	select {
	case r := <-done:
		return r.t, r.ok
	case <-time.After(10 * time.Second):
		t.Fatalf("Next(%s) did not return in 10s", after)
		return time.Time{}, false
	}
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

// BenchmarkNextNeverMatches measures the longest search there is: a cron
// that never fires, walked from 1970 to 2199.
func BenchmarkNextNeverMatches(b *testing.B) {
	e, err := ParseExpr("cron(0 0 30 FEB ? *)", "Pacific/Apia")
	if err != nil {
		b.Fatal(err)
	}
	after := time.Unix(0, 0)
	for b.Loop() {
		if _, ok := e.Next(after); ok {
			b.Fatal("cron(0 0 30 FEB ? *) fired")
		}
	}
}
