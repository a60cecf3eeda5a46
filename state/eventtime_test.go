package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

func TestAnEventTimeFarOutsideTheRangeIsRefusedAtOnce(t *testing.T) {
	a := openedAccount(t)
	tests := []struct {
		name string
		at   time.Time
		want string // refused, waiting, applied
	}{
		{"a top-up dated 1970", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "refused"},
		{"a top-up dated before 2000", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), "refused"},
		{"a top-up dated in the year 3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), "refused"},
		{"a top-up dated two days ahead", now.Add(48 * time.Hour), "refused"},
		{"a top-up dated ten minutes ahead waits for its time", now.Add(10 * time.Minute), "waiting"},
		{"a top-up dated a minute ahead is within the clock skew", now.Add(time.Minute), "applied"},
		{"a top-up dated 2000-01-01", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "applied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.Apply(a, event(t, events.TopupReceived, "e-t", tc.at, topUp("t1", "10.00")), rules, now)
			var refusal *state.Refusal
			var waiting *state.Waiting
			got := "applied"
			switch {
			case errors.As(err, &refusal):
				got = "refused"
			case errors.As(err, &waiting):
				got = "waiting"
			case err != nil:
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("%s (err %v), want %s", got, err, tc.want)
			}
		})
	}
}
