package consumers

import (
	"testing"
	"time"
)

func TestAWaitingEventIsRetriedSoonThenLessOften(t *testing.T) {
	for delivered, want := range map[uint64]time.Duration{
		1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 5: 3200 * time.Millisecond,
		8: 25600 * time.Millisecond, 9: 30 * time.Second, 1000: 30 * time.Second,
	} {
		if got := waitBackoff(delivered); got != want {
			t.Errorf("delivery %d: back off %s, want %s", delivered, got, want)
		}
	}
}
