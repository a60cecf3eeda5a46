package state_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/state"
)

// cst is the offset of the default calendar, UTC+08:00.
var cst = time.FixedZone("UTC+08:00", 8*60*60)

// calAt parses an RFC 3339 instant; the tests write local times with their +08:00 offset.
func calAt(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return at
}

// calDate is 10:00 on a local date in UTC+08:00, the middle of a working day.
func calDate(t *testing.T, date string) time.Time {
	t.Helper()
	return calAt(t, date+"T10:00:00+08:00")
}

func TestDefaultCalendarCoversAll2026And2027(t *testing.T) {
	data, err := os.ReadFile("calendars/cn-mainland.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.ParseCalendar(data); err != nil {
		t.Fatalf("the embedded calendar must be valid: %v", err)
	}

	cal := state.DefaultCalendar()
	if cal.Name() != "cn-mainland" {
		t.Errorf("name %q, want cn-mainland", cal.Name())
	}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, cst)
	for day := first; day.Year() < 2028; day = day.AddDate(0, 0, 1) {
		if !cal.Covers(day) || !cal.Covers(day.Add(24*time.Hour-time.Nanosecond)) {
			t.Fatalf("%s is not covered", day.Format("2006-01-02"))
		}
	}
	if cal.Covers(first.Add(-time.Nanosecond)) {
		t.Error("the last instant of 2025 (in UTC+08:00) is covered")
	}
	end := calAt(t, "2027-12-31T15:59:59.999999999Z")
	if got := cal.Until(); !got.Equal(end) || got.Location() != time.UTC {
		t.Errorf("Until() = %s, want %s in UTC", got, end)
	}
	if !cal.Covers(end) || cal.Covers(end.Add(time.Nanosecond)) {
		t.Error("coverage must end exactly at Until()")
	}
}

func TestOfficial2026HasTheStateCouncilsNumberOfBusinessDays(t *testing.T) {
	// 261 weekdays, minus 19 holidays falling on weekdays, plus 6 make-up working days.
	const want = 248
	cal := state.DefaultCalendar()
	got := 0
	for day := calDate(t, "2026-01-01"); day.Year() == 2026; day = day.AddDate(0, 0, 1) {
		if cal.IsBusinessDay(day) {
			got++
		}
	}
	if got != want {
		t.Errorf("2026 has %d business days, want %d", got, want)
	}
}

func TestBusinessDaysSkipWeekendsAndHolidays(t *testing.T) {
	cal := state.DefaultCalendar()
	for _, tc := range []struct {
		date string
		want bool
		why  string
	}{
		{"2026-01-01", false, "New Year's Day, a Thursday"},
		{"2026-01-02", false, "New Year holiday, a Friday"},
		{"2026-01-05", true, "an ordinary Monday"},
		{"2026-01-10", false, "an ordinary Saturday"},
		{"2026-01-11", false, "an ordinary Sunday"},
		{"2026-04-06", false, "Qingming, a Monday"},
		{"2026-05-05", false, "Labour Day holiday, a Tuesday"},
		{"2026-05-06", true, "the Wednesday after Labour Day"},
		{"2026-06-19", false, "Dragon Boat, a Friday"},
		{"2026-09-25", false, "Mid-Autumn, a Friday"},
		{"2026-10-07", false, "National Day holiday, a Wednesday"},
		{"2026-10-08", true, "the Thursday after National Day"},
		{"2027-01-01", false, "New Year's Day 2027, a Friday"},
	} {
		if got := cal.IsBusinessDay(calDate(t, tc.date)); got != tc.want {
			t.Errorf("%s (%s): business day %t, want %t", tc.date, tc.why, got, tc.want)
		}
	}

	// Counting skips the same days: Thursday 2026-04-02 + 2 jumps the Qingming weekend
	// and its Monday.
	got, err := cal.AddBusinessDays(calDate(t, "2026-04-02"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := calDate(t, "2026-04-07"); !got.Equal(want) {
		t.Errorf("2026-04-02 + 2 business days = %s, want %s", got, want)
	}
}

func TestMakeUpWorkingSaturdayIsABusinessDay(t *testing.T) {
	cal := state.DefaultCalendar()
	for _, date := range []string{
		"2026-01-04", // Sunday
		"2026-02-14", // Saturday
		"2026-02-28", // Saturday
		"2026-05-09", // Saturday
		"2026-09-20", // Sunday
		"2026-10-10", // Saturday
	} {
		if !cal.IsBusinessDay(calDate(t, date)) {
			t.Errorf("make-up working day %s is not a business day", date)
		}
	}

	// Friday 2026-05-08 + 1 is the make-up Saturday, not the Monday.
	got, err := cal.AddBusinessDays(calDate(t, "2026-05-08"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := calDate(t, "2026-05-09"); !got.Equal(want) {
		t.Errorf("2026-05-08 + 1 business day = %s, want %s", got, want)
	}
}

func TestTwoBusinessDaysFromFridayEndOnTuesday(t *testing.T) {
	cal := state.DefaultCalendar()
	for _, tc := range []struct{ from, want string }{
		{"2026-03-06T10:00:00+08:00", "2026-03-10T02:00:00Z"},
		// The local clock time is kept, even late in the evening.
		{"2026-03-06T23:30:00+08:00", "2026-03-10T15:30:00Z"},
		// A Friday already in UTC+08:00 while it is still Thursday in UTC.
		{"2026-03-05T16:00:00Z", "2026-03-10T00:00:00+08:00"},
		// A Saturday or Sunday start never counts itself.
		{"2026-03-07T10:00:00+08:00", "2026-03-10T10:00:00+08:00"},
		{"2026-03-08T10:00:00+08:00", "2026-03-10T10:00:00+08:00"},
	} {
		got, err := cal.AddBusinessDays(calAt(t, tc.from), 2)
		if err != nil {
			t.Fatalf("%s + 2: %v", tc.from, err)
		}
		if want := calAt(t, tc.want); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s + 2 business days = %s, want %s in UTC", tc.from, got, want.UTC())
		}
	}
}

func TestBusinessDaysAcrossTheSpringFestival2026(t *testing.T) {
	cal := state.DefaultCalendar()
	for _, tc := range []struct {
		from string
		n    int
		want string
	}{
		{"2026-02-13", 1, "2026-02-14"}, // the make-up Saturday before the holiday
		{"2026-02-13", 2, "2026-02-24"}, // Feb 15 to 23 are off
		{"2026-02-14", 1, "2026-02-24"},
		{"2026-02-18", 1, "2026-02-24"}, // counting from inside the holiday
		{"2026-02-12", 5, "2026-02-26"},
		{"2026-02-24", 4, "2026-02-28"}, // the make-up Saturday after it
		{"2026-02-24", 5, "2026-03-02"},
	} {
		got, err := cal.AddBusinessDays(calDate(t, tc.from), tc.n)
		if err != nil {
			t.Fatalf("%s + %d: %v", tc.from, tc.n, err)
		}
		if want := calDate(t, tc.want); !got.Equal(want) {
			t.Errorf("%s + %d business days = %s, want %s", tc.from, tc.n, got.In(cst), tc.want)
		}
	}
}

func TestBusinessDaysAcrossNationalDay2026(t *testing.T) {
	cal := state.DefaultCalendar()
	for _, tc := range []struct {
		from string
		n    int
		want string
	}{
		{"2026-09-18", 1, "2026-09-20"}, // make-up Sunday
		{"2026-09-24", 1, "2026-09-28"}, // Mid-Autumn Sep 25 to 27
		{"2026-09-30", 1, "2026-10-08"}, // Oct 1 to 7 are off
		{"2026-09-30", 3, "2026-10-10"}, // make-up Saturday
		{"2026-09-30", 4, "2026-10-12"},
		{"2026-10-03", 1, "2026-10-08"},
	} {
		got, err := cal.AddBusinessDays(calDate(t, tc.from), tc.n)
		if err != nil {
			t.Fatalf("%s + %d: %v", tc.from, tc.n, err)
		}
		if want := calDate(t, tc.want); !got.Equal(want) {
			t.Errorf("%s + %d business days = %s, want %s", tc.from, tc.n, got.In(cst), tc.want)
		}
	}
}

func TestTheDateIsTheLocalDateInTheCalendarsZone(t *testing.T) {
	cal := state.DefaultCalendar()

	// 2026-01-04T20:00:00Z is already Monday Jan 5, 04:00 in UTC+08:00: one business day
	// later is Tuesday Jan 6, 04:00 local.
	got, err := cal.AddBusinessDays(calAt(t, "2026-01-04T20:00:00Z"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := calAt(t, "2026-01-05T20:00:00Z"); !got.Equal(want) {
		t.Errorf("2026-01-04T20:00:00Z + 1 business day = %s, want %s", got, want)
	}

	for _, tc := range []struct {
		at   string
		want bool
		why  string
	}{
		{"2026-01-09T17:00:00Z", false, "Friday in UTC, Saturday Jan 10 in UTC+08:00"},
		{"2026-01-03T20:00:00Z", true, "a holiday in UTC, the make-up Sunday Jan 4 in UTC+08:00"},
		{"2026-01-05T15:59:59Z", true, "Monday 23:59:59 in UTC+08:00"},
		{"2026-01-02T16:00:00Z", false, "the holiday Saturday Jan 3 in UTC+08:00"},
	} {
		if got := cal.IsBusinessDay(calAt(t, tc.at)); got != tc.want {
			t.Errorf("%s (%s): business day %t, want %t", tc.at, tc.why, got, tc.want)
		}
	}
}

func TestZeroBusinessDaysIsTheSameInstant(t *testing.T) {
	cal := state.DefaultCalendar()
	from := calAt(t, "2026-01-01T09:15:00+08:00") // a holiday: n == 0 does not move it
	got, err := cal.AddBusinessDays(from, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(from) || got.Location() != time.UTC {
		t.Errorf("+0 business days = %s, want %s in UTC", got, from.UTC())
	}
}

func TestCountingPastTheCalendarIsRefused(t *testing.T) {
	cal := state.DefaultCalendar()

	got, err := cal.AddBusinessDays(calDate(t, "2027-12-30"), 1)
	if err != nil {
		t.Fatalf("the last covered day must still be reachable: %v", err)
	}
	if want := calDate(t, "2027-12-31"); !got.Equal(want) {
		t.Errorf("2027-12-30 + 1 = %s, want %s", got, want)
	}

	for _, tc := range []struct {
		from string
		n    int
		why  string
	}{
		{"2027-12-30T10:00:00+08:00", 2, "the second business day would be in 2028"},
		{"2027-12-31T10:00:00+08:00", 1, "the next day is after 2027-12-31"},
		{"2027-12-31T16:00:00Z", 0, "from is 2028-01-01 in UTC+08:00"},
		{"2028-01-03T10:00:00+08:00", 1, "from is after the calendar"},
		{"2025-12-31T15:59:59Z", 1, "from is 2025-12-31 in UTC+08:00, before the calendar"},
		{"2027-01-04T10:00:00+08:00", 400, "more business days than the calendar has left"},
	} {
		got, err := cal.AddBusinessDays(calAt(t, tc.from), tc.n)
		if !errors.Is(err, state.ErrOutsideCalendar) {
			t.Errorf("%s + %d (%s) = %s, %v; want ErrOutsideCalendar", tc.from, tc.n, tc.why, got, err)
		}
	}

	// The day after the last one is never assumed, even when it is a plain Wednesday.
	small, err := state.ParseCalendar(calFile(t, nil)) // until Tuesday 2026-03-31
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.AddBusinessDays(time.Date(2026, 3, 31, 9, 0, 0, 0, time.FixedZone("", -5*60*60)), 1); !errors.Is(err, state.ErrOutsideCalendar) {
		t.Errorf("one business day after the last covered day: %v, want ErrOutsideCalendar", err)
	}

	if _, err := (state.Calendar{}).AddBusinessDays(calDate(t, "2026-03-02"), 1); !errors.Is(err, state.ErrOutsideCalendar) {
		t.Errorf("the zero Calendar: %v, want ErrOutsideCalendar", err)
	}
	if cal.IsBusinessDay(calDate(t, "2028-01-03")) {
		t.Error("a Monday after the calendar is reported a business day; outside it nothing is")
	}
}

func TestANegativeNumberOfBusinessDaysIsAnError(t *testing.T) {
	_, err := state.DefaultCalendar().AddBusinessDays(calDate(t, "2026-03-02"), -1)
	if err == nil || errors.Is(err, state.ErrOutsideCalendar) {
		t.Errorf("-1 business days: %v, want an error that is not ErrOutsideCalendar", err)
	}
}

// calFile is a small valid calendar file with edit applied; a nil value deletes a key.
func calFile(t *testing.T, edit map[string]any) []byte {
	t.Helper()
	f := map[string]any{
		"name":                 "test",
		"zone_offset":          "-05:00",
		"from":                 "2026-03-01",
		"until":                "2026-03-31",
		"note":                 "a test calendar",
		"holidays":             []string{"2026-03-02", "2026-03-07"},
		"working_weekend_days": []string{"2026-03-08"},
	}
	for k, v := range edit {
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = v
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseCalendarReadsAValidFile(t *testing.T) {
	cal, err := state.ParseCalendar(calFile(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	est := time.FixedZone("UTC-05:00", -5*60*60)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 3, 2, 12, 0, 0, 0, est), false},     // holiday Monday
		{time.Date(2026, 3, 3, 12, 0, 0, 0, est), true},      // Tuesday
		{time.Date(2026, 3, 7, 12, 0, 0, 0, est), false},     // holiday Saturday
		{time.Date(2026, 3, 8, 12, 0, 0, 0, est), true},      // working Sunday
		{time.Date(2026, 3, 14, 12, 0, 0, 0, est), false},    // Saturday
		{time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC), false}, // still the holiday Monday at -05:00
		{time.Date(2026, 3, 31, 23, 59, 0, 0, est), true},    // the last covered minute, a Tuesday
		{time.Date(2026, 4, 1, 4, 59, 0, 0, time.UTC), true}, // the same minute seen from UTC
		{time.Date(2026, 4, 1, 12, 0, 0, 0, est), false},     // not covered
		{time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC), false}, // Sunday Mar 1 at -05:00, not Monday
	} {
		if got := cal.IsBusinessDay(tc.at); got != tc.want {
			t.Errorf("%s: business day %t, want %t", tc.at, got, tc.want)
		}
	}
	if want := time.Date(2026, 4, 1, 4, 59, 59, 999999999, time.UTC); !cal.Until().Equal(want) {
		t.Errorf("Until() = %s, want %s", cal.Until(), want)
	}
}

func TestParseCalendarRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string // part of the error
	}{
		{"not JSON", []byte(`{"name":`), "calendar: decode"},
		{"data after the object", append(calFile(t, nil), ` {}`...), "calendar: decode: data after"},
		{"an unknown field", calFile(t, map[string]any{"holiday": []string{"2026-03-03"}}), "calendar: decode: json: unknown field"},
		{"no name", calFile(t, map[string]any{"name": nil}), "calendar: name is missing"},
		{"zone offset missing", calFile(t, map[string]any{"zone_offset": nil}), "calendar test: zone_offset"},
		{"zone offset without minutes", calFile(t, map[string]any{"zone_offset": "+08"}), "calendar test: zone_offset"},
		{"zone offset without sign", calFile(t, map[string]any{"zone_offset": "08:00"}), "calendar test: zone_offset"},
		{"zone offset with one hour digit", calFile(t, map[string]any{"zone_offset": "+8:000"}), "calendar test: zone_offset"},
		{"zone offset minutes out of range", calFile(t, map[string]any{"zone_offset": "+08:60"}), "calendar test: zone_offset"},
		{"zone offset hours out of range", calFile(t, map[string]any{"zone_offset": "+15:00"}), "calendar test: zone_offset"},
		{"zone name instead of offset", calFile(t, map[string]any{"zone_offset": "Asia/Shanghai"}), "calendar test: zone_offset"},
		{"from missing", calFile(t, map[string]any{"from": nil}), "calendar test: from"},
		{"from not zero-padded", calFile(t, map[string]any{"from": "2026-3-01"}), "calendar test: from"},
		{"until not a real date", calFile(t, map[string]any{"until": "2026-02-30"}), "calendar test: until"},
		{"from after until", calFile(t, map[string]any{"from": "2026-04-01", "until": "2026-03-31"}), "calendar test: from 2026-04-01 is after until"},
		{"holiday with slashes", calFile(t, map[string]any{"holidays": []string{"2026/03/02"}}), "calendar test: holidays"},
		{"holiday with a time", calFile(t, map[string]any{"holidays": []string{"2026-03-02T00:00:00Z"}}), "calendar test: holidays"},
		{"holiday before from", calFile(t, map[string]any{"holidays": []string{"2026-02-28"}}), "calendar test: holidays: 2026-02-28 is outside"},
		{"holiday after until", calFile(t, map[string]any{"holidays": []string{"2026-04-01"}}), "calendar test: holidays: 2026-04-01 is outside"},
		{"holiday listed twice", calFile(t, map[string]any{"holidays": []string{"2026-03-02", "2026-03-02"}}), "calendar test: holidays: 2026-03-02 is listed twice"},
		{"working day not a date", calFile(t, map[string]any{"working_weekend_days": []string{"Sunday"}}), "calendar test: working_weekend_days"},
		{"working day outside", calFile(t, map[string]any{"working_weekend_days": []string{"2026-04-04"}}), "calendar test: working_weekend_days: 2026-04-04 is outside"},
		{"working day on a weekday", calFile(t, map[string]any{"working_weekend_days": []string{"2026-03-04"}}), "calendar test: working_weekend_days: 2026-03-04 is a Wednesday"},
		{"both holiday and working day", calFile(t, map[string]any{"working_weekend_days": []string{"2026-03-07"}}), "calendar test: 2026-03-07 is both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.ParseCalendar(tc.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start with %q", err, tc.want)
			}
		})
	}
}
