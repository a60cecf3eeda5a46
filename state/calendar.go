package state

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrOutsideCalendar is returned, wrapped, when an answer depends on a day the calendar
// does not cover. Past its last day the holidays are not known yet, and a refund
// deadline counted on a guess could fall on a holiday; callers should wait or refuse.
var ErrOutsideCalendar = errors.New("date outside the business-day calendar")

// Calendar says which local dates of one jurisdiction are business days. It covers an
// inclusive range of local dates [from, until] in a fixed UTC offset, and knows nothing
// outside it.
//
// A covered day is a business day when it is Monday to Friday and not a holiday, or when
// it is a make-up working Saturday or Sunday (调休上班). The data is configuration:
// build one with ParseCalendar or take DefaultCalendar.
//
// A Calendar is immutable, so copies may be shared between goroutines. The zero value
// covers no day.
type Calendar struct {
	name        string
	zone        *time.Location
	from, until calDay
	holidays    map[calDay]struct{}
	working     map[calDay]struct{} // only Saturdays and Sundays, never holidays
}

//go:embed calendars/cn-mainland.json
var cnMainlandCalendar []byte

// The embedded file is parsed once: DefaultCalendar may be called per decision.
var defaultCalendar = sync.OnceValues(func() (Calendar, error) {
	return ParseCalendar(cnMainlandCalendar)
})

// DefaultCalendar is mainland China, 2026 and 2027, from calendars/cn-mainland.json.
// 2026 is the State Council's official schedule; 2027 is provisional until the official
// notice is published (see the file's note). It panics only if the embedded file is
// invalid, which a test rules out.
func DefaultCalendar() Calendar {
	c, err := defaultCalendar()
	if err != nil {
		panic(err)
	}
	return c
}

// calendarFile is the JSON format of a calendar. Dates are local dates, YYYY-MM-DD.
type calendarFile struct {
	Name       string `json:"name"`
	ZoneOffset string `json:"zone_offset"` // ±HH:MM, e.g. "+08:00"
	From       string `json:"from"`        // first covered date, inclusive
	Until      string `json:"until"`       // last covered date, inclusive
	// Note is for people: the source of the data and which parts are provisional.
	Note               string   `json:"note"`
	Holidays           []string `json:"holidays"`
	WorkingWeekendDays []string `json:"working_weekend_days"`
}

// ParseCalendar reads a calendar in the JSON format of calendars/cn-mainland.json and
// refuses a file that could silently give a wrong answer: unknown fields (a misspelt
// "holidays" would otherwise make every weekday a business day), malformed or
// duplicated dates, dates outside [from, until], a date both holiday and working day, a
// working day that is not a Saturday or Sunday, from after until, or a bad zone_offset.
func ParseCalendar(data []byte) (Calendar, error) {
	var f calendarFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Calendar{}, fmt.Errorf("calendar: decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Calendar{}, errors.New("calendar: decode: data after the calendar object")
	}
	if f.Name == "" {
		return Calendar{}, errors.New("calendar: name is missing")
	}
	fail := func(format string, args ...any) (Calendar, error) {
		return Calendar{}, fmt.Errorf("calendar %s: "+format, append([]any{f.Name}, args...)...)
	}

	zone, err := parseZoneOffset(f.ZoneOffset)
	if err != nil {
		return fail("zone_offset: %w", err)
	}
	from, err := parseCalDay(f.From)
	if err != nil {
		return fail("from: %w", err)
	}
	until, err := parseCalDay(f.Until)
	if err != nil {
		return fail("until: %w", err)
	}
	if from > until {
		return fail("from %s is after until %s", from, until)
	}

	c := Calendar{name: f.Name, zone: zone, from: from, until: until}
	holidays, err := c.parseDays("holidays", f.Holidays)
	if err != nil {
		return fail("%w", err)
	}
	working, err := c.parseDays("working_weekend_days", f.WorkingWeekendDays)
	if err != nil {
		return fail("%w", err)
	}
	c.holidays = calDaySet(holidays)
	// In file order, so that the first bad entry is the one reported.
	for _, d := range working {
		if !d.weekend() {
			return fail("working_weekend_days: %s is a %s, not a Saturday or Sunday", d, d.weekday())
		}
		if _, ok := c.holidays[d]; ok {
			return fail("%s is both a holiday and a working weekend day", d)
		}
	}
	c.working = calDaySet(working)
	return c, nil
}

// parseDays parses one list of dates, each inside the calendar's range and listed once.
func (c Calendar) parseDays(field string, dates []string) ([]calDay, error) {
	days := make([]calDay, 0, len(dates))
	seen := make(map[calDay]bool, len(dates))
	for _, s := range dates {
		d, err := parseCalDay(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if d < c.from || d > c.until {
			return nil, fmt.Errorf("%s: %s is outside [%s, %s]", field, d, c.from, c.until)
		}
		if seen[d] {
			return nil, fmt.Errorf("%s: %s is listed twice", field, d)
		}
		seen[d] = true
		days = append(days, d)
	}
	return days, nil
}

func calDaySet(days []calDay) map[calDay]struct{} {
	set := make(map[calDay]struct{}, len(days))
	for _, d := range days {
		set[d] = struct{}{}
	}
	return set
}

// parseZoneOffset accepts exactly ±HH:MM. A fixed offset rather than a zone name keeps
// the answer independent of the host's tz database, at the price of not expressing
// daylight saving: China has none since 1991.
func parseZoneOffset(s string) (*time.Location, error) {
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return nil, fmt.Errorf("%q is not ±HH:MM", s)
	}
	digits := func(p string) (int, bool) {
		if p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' {
			return 0, false
		}
		return int(p[0]-'0')*10 + int(p[1]-'0'), true
	}
	hh, okH := digits(s[1:3])
	mm, okM := digits(s[4:6])
	if !okH || !okM || hh > 14 || mm > 59 {
		return nil, fmt.Errorf("%q is not ±HH:MM with HH <= 14 and MM <= 59", s)
	}
	offset := (hh*60 + mm) * 60
	if s[0] == '-' {
		offset = -offset
	}
	return time.FixedZone("UTC"+s, offset), nil
}

// Name is the calendar's name, e.g. "cn-mainland".
func (c Calendar) Name() string { return c.name }

// Until is the last instant the calendar covers, in UTC: the last nanosecond of its
// last local date (for cn-mainland, 2027-12-31T23:59:59.999999999+08:00). It is
// inclusive so that !t.After(c.Until()) agrees with Covers at the end of the range.
// The zero Calendar returns the zero time.
func (c Calendar) Until() time.Time {
	if c.zone == nil {
		return time.Time{}
	}
	return (c.until + 1).at(0, 0, 0, 0, c.zone).Add(-time.Nanosecond).UTC()
}

// Covers reports whether the local date of t, in the calendar's zone, is one of the
// dates the calendar covers.
func (c Calendar) Covers(t time.Time) bool {
	if c.zone == nil {
		return false
	}
	d := calDayOf(t, c.zone)
	return c.from <= d && d <= c.until
}

// IsBusinessDay reports whether the local date of t, in the calendar's zone, is a
// business day. A date the calendar does not cover is reported as not a business day,
// never guessed from its weekday; use Covers to tell the two apart.
func (c Calendar) IsBusinessDay(t time.Time) bool {
	return c.Covers(t) && c.isBusinessDay(calDayOf(t, c.zone))
}

// isBusinessDay expects a covered day.
func (c Calendar) isBusinessDay(d calDay) bool {
	if _, ok := c.holidays[d]; ok {
		return false
	}
	if d.weekend() {
		_, ok := c.working[d]
		return ok
	}
	return true
}

// AddBusinessDays returns the instant n business days after from, in UTC. It steps
// forward one local date at a time in the calendar's zone, counting only business days,
// and returns the n-th business day at the same local clock time as from. The day of
// from itself never counts, whether or not it is a business day: two business days
// after a Friday are the Tuesday.
//
// n == 0 returns from (in UTC). A negative n is an error. If from is not covered, or
// reaching the n-th business day needs a date after the calendar's last one, the error
// wraps ErrOutsideCalendar: the calendar refuses to decide rather than guess.
func (c Calendar) AddBusinessDays(from time.Time, n int) (time.Time, error) {
	if n < 0 {
		return time.Time{}, fmt.Errorf("calendar %s: %d business days: must not be negative", c.name, n)
	}
	if !c.Covers(from) {
		return time.Time{}, fmt.Errorf("calendar %s: %s is outside %s: %w",
			c.name, from.UTC().Format(time.RFC3339), c.coverage(), ErrOutsideCalendar)
	}
	if n == 0 {
		return from.UTC(), nil
	}
	local := from.In(c.zone)
	day := calDayOf(local, c.zone)
	for counted := 0; counted < n; {
		day++
		if day > c.until {
			return time.Time{}, fmt.Errorf("calendar %s: %d business days after %s end after %s: %w",
				c.name, n, local.Format(time.RFC3339), c.until, ErrOutsideCalendar)
		}
		if c.isBusinessDay(day) {
			counted++
		}
	}
	return day.at(local.Hour(), local.Minute(), local.Second(), local.Nanosecond(), c.zone).UTC(), nil
}

func (c Calendar) coverage() string {
	if c.zone == nil {
		return "an empty calendar"
	}
	return fmt.Sprintf("[%s, %s] in %s", c.from, c.until, c.zone)
}

// calDay is a local date counted in days since 1970-01-01. Whole-day integers make
// stepping and comparing dates exact; a time.Time would carry a clock and a zone that a
// date does not have.
type calDay int64

const (
	calDateLayout    = "2006-01-02"
	calSecondsPerDay = 24 * 60 * 60
)

func parseCalDay(s string) (calDay, error) {
	t, err := time.Parse(calDateLayout, s)
	if err != nil {
		return 0, fmt.Errorf("date %q is not a valid YYYY-MM-DD date", s)
	}
	return calDayOf(t, time.UTC), nil
}

// calDayOf is the local date of t in zone.
func calDayOf(t time.Time, zone *time.Location) calDay {
	y, m, d := t.In(zone).Date()
	// Midnight UTC is a whole number of days from the epoch, so the division is exact
	// on both sides of 1970.
	return calDay(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / calSecondsPerDay)
}

// at is the instant of the local clock time h:m:s.ns on day d in zone.
func (d calDay) at(h, m, s, ns int, zone *time.Location) time.Time {
	y, mo, dd := d.utcMidnight().Date()
	return time.Date(y, mo, dd, h, m, s, ns, zone)
}

func (d calDay) utcMidnight() time.Time { return time.Unix(int64(d)*calSecondsPerDay, 0).UTC() }

func (d calDay) weekday() time.Weekday { return d.utcMidnight().Weekday() }

func (d calDay) weekend() bool {
	wd := d.weekday()
	return wd == time.Saturday || wd == time.Sunday
}

func (d calDay) String() string { return d.utcMidnight().Format(calDateLayout) }
