package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// The reserve countdown against real NATS and Redis, with a hold of a few seconds:
// long enough that an event processed a second late on a loaded machine does not
// change the outcome, short enough to keep the tests quick.
// Event times are the wall clock's, because the countdown runs from them.

const testHold = 3 * time.Second

func withHold(hold time.Duration) func(*Config, *hooks) {
	return func(c *Config, _ *hooks) { c.ReserveHold = hold }
}

// racingCountdowns makes an instance's claims expire after a millisecond and poll every
// 10ms, so that two instances keep taking each other's claims and fire the same
// deadlines at the same time: only the atomic step can keep the release to one.
func racingCountdowns(_ *Config, h *hooks) {
	h.countdownConfig = func(c *consumers.CountdownConfig) {
		c.Lease = time.Millisecond
		c.Poll = 10 * time.Millisecond
	}
}

type reserveView struct {
	Withdrawable string `json:"withdrawable"`
	Reserve      struct {
		State      string     `json:"state"`
		UnfreezeAt *time.Time `json:"unfreeze_at"`
	} `json:"reserve"`
}

// reserve reads the account's reserve; before the account exists its state is "".
func (d *daemon) reserve(t *testing.T, account string) reserveView {
	t.Helper()
	var v reserveView
	switch code := d.get(t, "/v1/accounts/"+account, &v); code {
	case http.StatusOK:
		return v
	case http.StatusNotFound:
		return reserveView{}
	default:
		t.Fatalf("GET account %s: HTTP %d", account, code)
		return v
	}
}

// openWithCash opens account with 500 of cash and creates the pay-as-you-go
// resources, all at the current time.
func (d *daemon) openWithCash(t *testing.T, account string, resources ...string) {
	t.Helper()
	now := time.Now().UTC()
	d.publish(t, events.AccountOpened, account, account+"-open", now, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
	d.publish(t, events.TopupReceived, account, account+"-topup", now, &events.TopupReceivedData{
		TopupID: "t1", Amount: events.MustAmount("500.00"), Currency: "CNY", Channel: "alipay", PayerType: "individual", PayerName: "Li Wei",
	})
	for _, r := range resources {
		d.create(t, account, r)
	}
	waitFor(t, func() string {
		if v := d.reserve(t, account); v.Reserve.State != "frozen" || v.Withdrawable != "400.00" {
			return fmt.Sprintf("%s: reserve %s, withdrawable %s; want frozen, 400.00", account, v.Reserve.State, v.Withdrawable)
		}
		return ""
	})
}

func (d *daemon) create(t *testing.T, account, resource string) {
	t.Helper()
	d.publish(t, events.ResourceCreated, account, account+"-create-"+resource, time.Now().UTC(), &events.ResourceCreatedData{ResourceID: resource, BillingMode: "payg"})
}

// release publishes a release that happened at at, and returns at.
func (d *daemon) release(t *testing.T, account, resource string, at time.Time) time.Time {
	t.Helper()
	d.publish(t, events.ResourceReleased, account, fmt.Sprintf("%s-release-%s-%d", account, resource, at.UnixNano()), at, &events.ResourceReleasedData{ResourceID: resource})
	return at
}

func (d *daemon) unfrozen(t *testing.T, account string) []events.Event {
	t.Helper()
	var out []events.Event
	for _, ev := range d.outbound(t, account) {
		if ev.Type == events.ReserveUnfrozen {
			out = append(out, ev)
		}
	}
	return out
}

// waitUntilReleasedOnce waits for the reserve to be released and checks that exactly
// one refunds.reserve.unfrozen was published, with the release it counted from.
func (d *daemon) waitUntilReleasedOnce(t *testing.T, account string, lastRelease time.Time) {
	t.Helper()
	waitFor(t, func() string {
		if v := d.reserve(t, account); v.Reserve.State != "none" || v.Withdrawable != "500.00" {
			return fmt.Sprintf("%s: reserve %s, withdrawable %s; want released, 500.00", account, v.Reserve.State, v.Withdrawable)
		}
		return ""
	})
	var unfrozen []events.Event
	waitFor(t, func() string {
		if unfrozen = d.unfrozen(t, account); len(unfrozen) == 0 {
			return "no refunds.reserve.unfrozen for " + account
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond) // room for a second, wrong one to arrive
	if unfrozen = d.unfrozen(t, account); len(unfrozen) != 1 {
		t.Fatalf("%s: %d refunds.reserve.unfrozen events, want exactly 1", account, len(unfrozen))
	}
	data := unfrozen[0].Payload.(*events.ReserveUnfrozenData)
	if data.LastReleaseAt == nil || !data.LastReleaseAt.Equal(lastRelease.UTC()) || data.Amount.String() != "100" {
		t.Errorf("%s: unfrozen %+v, want 100 with last_release_at %s", account, data, lastRelease)
	}
}

// stillFrozenAfter checks, past the time the reserve could have been released, that it
// was not.
func (d *daemon) stillNotReleasedAt(t *testing.T, account string, at time.Time) {
	t.Helper()
	time.Sleep(time.Until(at))
	if v := d.reserve(t, account); v.Reserve.State == "none" || v.Withdrawable != "400.00" {
		t.Fatalf("%s: reserve %s, withdrawable %s at %s; want it still held", account, v.Reserve.State, v.Withdrawable, at.Format(time.RFC3339Nano))
	}
	if n := len(d.unfrozen(t, account)); n != 0 {
		t.Fatalf("%s: %d unfrozen events published early", account, n)
	}
}

func TestReserveCountdown(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL, withHold(testHold))

	t.Run("a second release resets the countdown to its own time", func(t *testing.T) {
		t.Parallel()
		const acct = "acct-reset"
		d.openWithCash(t, acct, "ecs-1", "ecs-2")
		first := d.release(t, acct, "ecs-1", time.Now().UTC())
		time.Sleep(testHold / 2)
		second := d.release(t, acct, "ecs-2", time.Now().UTC())
		waitFor(t, func() string {
			if v := d.reserve(t, acct); v.Reserve.UnfreezeAt == nil || !v.Reserve.UnfreezeAt.Equal(second.Add(testHold)) {
				return fmt.Sprintf("unfreeze at %v, want %s", v.Reserve.UnfreezeAt, second.Add(testHold))
			}
			return ""
		})
		d.stillNotReleasedAt(t, acct, first.Add(testHold+testHold/4))
		d.waitUntilReleasedOnce(t, acct, second)
	})

	t.Run("a new resource cancels the countdown", func(t *testing.T) {
		t.Parallel()
		const acct = "acct-cancel"
		d.openWithCash(t, acct, "ecs-1")
		released := d.release(t, acct, "ecs-1", time.Now().UTC())
		time.Sleep(testHold / 2)
		d.create(t, acct, "ecs-2")
		d.stillNotReleasedAt(t, acct, released.Add(2*testHold))
		if v := d.reserve(t, acct); v.Reserve.State != "frozen" {
			t.Fatalf("reserve %s after the new resource, want frozen", v.Reserve.State)
		}
	})

	t.Run("no release while a resource is still active", func(t *testing.T) {
		t.Parallel()
		const acct = "acct-active"
		d.openWithCash(t, acct, "ecs-1", "ecs-2")
		released := d.release(t, acct, "ecs-1", time.Now().UTC())
		d.stillNotReleasedAt(t, acct, released.Add(2*testHold))
	})

	t.Run("a late release with an older time does not shorten the countdown", func(t *testing.T) {
		t.Parallel()
		const acct = "acct-late"
		d.openWithCash(t, acct, "ecs-1", "ecs-2")
		latest := d.release(t, acct, "ecs-2", time.Now().UTC())
		// Released long before, reported after: counted from its own time the reserve
		// would be due at once.
		d.release(t, acct, "ecs-1", latest.Add(-10*testHold))
		d.stillNotReleasedAt(t, acct, latest.Add(testHold/2))
		if v := d.reserve(t, acct); v.Reserve.UnfreezeAt == nil || !v.Reserve.UnfreezeAt.Equal(latest.Add(testHold)) {
			t.Fatalf("unfreeze at %v, want %s", v.Reserve.UnfreezeAt, latest.Add(testHold))
		}
		d.waitUntilReleasedOnce(t, acct, latest)
	})
}

func TestReserveCountdownSurvivesRestartsOfRefunddRedisAndNATS(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	const acct = "acct-restart"
	hold := 3 * time.Second
	first := startDaemon(t, nats.URL, redis.URL, withHold(hold))
	first.openWithCash(t, acct, "ecs-1")
	released := first.release(t, acct, "ecs-1", time.Now().UTC())
	waitFor(t, func() string {
		if v := first.reserve(t, acct); v.Reserve.State != "counting_down" {
			return "reserve " + v.Reserve.State + ", want counting_down"
		}
		return ""
	})
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := redis.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nats.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(released.Add(hold + 500*time.Millisecond)))

	// Nothing ran at the deadline; the next refundd finds it due and releases it once.
	second := startDaemon(t, nats.URL, redis.URL, withHold(hold))
	second.waitUntilReleasedOnce(t, acct, released)
}

func TestTwoInstancesReleaseEachReserveExactlyOnce(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	a := startDaemon(t, nats.URL, redis.URL, withHold(testHold), racingCountdowns)
	b := startDaemon(t, nats.URL, redis.URL, withHold(testHold), racingCountdowns)
	const accounts = 20
	releases := make([]time.Time, accounts)
	for i := range accounts {
		acct := fmt.Sprintf("acct-pair-%02d", i)
		a.openWithCash(t, acct, "ecs-1")
	}
	// Released together, so both instances' countdown runners find them due at once.
	for i := range accounts {
		releases[i] = b.release(t, fmt.Sprintf("acct-pair-%02d", i), "ecs-1", time.Now().UTC())
	}
	for i := range accounts {
		acct := fmt.Sprintf("acct-pair-%02d", i)
		waitFor(t, func() string {
			// Read through either instance: they share the state.
			if v := []*daemon{a, b}[i%2].reserve(t, acct); v.Reserve.State != "none" || v.Withdrawable != "500.00" {
				return fmt.Sprintf("%s: reserve %s, withdrawable %s; want released, 500.00", acct, v.Reserve.State, v.Withdrawable)
			}
			return ""
		})
	}
	time.Sleep(500 * time.Millisecond) // room for a second, wrong event to arrive
	perAccount := map[string]int{}
	for _, ev := range a.published(t, "refunds.reserve.unfrozen.*") {
		perAccount[ev.Subject]++
		if want := releases[indexOf(ev.Subject)]; !ev.Payload.(*events.ReserveUnfrozenData).LastReleaseAt.Equal(want) {
			t.Errorf("%s: last_release_at %v, want %s", ev.Subject, ev.Payload.(*events.ReserveUnfrozenData).LastReleaseAt, want)
		}
	}
	for i := range accounts {
		if n := perAccount[fmt.Sprintf("acct-pair-%02d", i)]; n != 1 {
			t.Errorf("acct-pair-%02d: %d refunds.reserve.unfrozen events, want exactly 1", i, n)
		}
	}
	// Each instance counts the reserves it released: together exactly one per account.
	fromA, fromB := a.metric(t, "refunds_reserve_fire_delay_seconds_count"), b.metric(t, "refunds_reserve_fire_delay_seconds_count")
	t.Logf("reserves released by instance a: %d, by b: %d", fromA, fromB)
	if fromA+fromB != accounts {
		t.Errorf("the instances released %d + %d reserves, want %d in all", fromA, fromB, accounts)
	}
}

// metric reads one unlabelled sample from the instance's /metrics.
func (d *daemon) metric(t *testing.T, name string) int {
	t.Helper()
	v, ok := d.metricValue(t, name)
	if !ok {
		t.Fatalf("metric %s not found", name)
	}
	return v
}

// metricValue is one sample of the instance's /metrics, and whether it is there.
func (d *daemon) metricValue(t *testing.T, name string) (int, bool) {
	t.Helper()
	resp, err := http.Get("http://" + d.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		var v int
		if _, err := fmt.Sscanf(line, name+" %d", &v); err == nil {
			return v, true
		}
	}
	return 0, false
}

func indexOf(pairAccount string) int {
	var i int
	_, _ = fmt.Sscanf(pairAccount, "acct-pair-%02d", &i)
	return i
}

func TestPendingTimersAreCountedByKindInTheMetrics(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	d.openWithCash(t, "acct-kinds-1", "ecs-1")
	d.openWithCash(t, "acct-kinds-2", "ecs-2")
	d.release(t, "acct-kinds-1", "ecs-1", time.Now().UTC())
	d.release(t, "acct-kinds-2", "ecs-2", time.Now().UTC())
	reserve, overdue := `refunds_timers_pending_by_kind{kind="reserve_unfreeze"}`, `refunds_timers_pending_by_kind{kind="case_overdue"}`
	waitFor(t, func() string {
		if r, o := d.metric(t, reserve), d.metric(t, overdue); r != 2 || o != 0 {
			return fmt.Sprintf("%d reserve and %d case overdue timers pending, want 2 and 0", r, o)
		}
		return ""
	})
	// A new resource freezes the reserve again: its countdown stops.
	d.create(t, "acct-kinds-2", "ecs-3")
	waitFor(t, func() string {
		if r := d.metric(t, reserve); r != 1 {
			return fmt.Sprintf("%d reserve timers pending, want 1", r)
		}
		return ""
	})
}
