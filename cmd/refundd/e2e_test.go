package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/producers"
)

// daemon is refundd running in this test process against real NATS and Redis.
type daemon struct {
	httpAddr string
	js       jetstream.JetStream
	pub      *producers.Publisher
	stop     func() error
}

var daemons atomic.Int64

// capturedLogs, when set, also receives the log output of the daemons started.
var capturedLogs io.Writer

// startDaemon runs refundd against natsURL and redisURL until the test ends; adjust
// changes its configuration and hooks first.
func startDaemon(t *testing.T, natsURL, redisURL string, adjust ...func(*Config, *hooks)) *daemon {
	t.Helper()
	cfg := Config{
		NATSURL: natsURL, RedisURL: redisURL, HTTPAddr: "127.0.0.1:0",
		ReserveHold: 24 * time.Hour, Instance: fmt.Sprintf("e2e-%d", daemons.Add(1)),
	}
	h := &hooks{}
	for _, f := range adjust {
		f(&cfg, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	readyAddr := make(chan string, 1)
	result := make(chan error, 1)
	go func() {
		h.ready = func(addr string) { readyAddr <- addr }
		var logs io.Writer = zerolog.NewTestWriter(t)
		if capturedLogs != nil {
			logs = io.MultiWriter(logs, capturedLogs)
		}
		result <- run(ctx, cfg, zerolog.New(logs), h)
	}()
	d := &daemon{}
	select {
	case d.httpAddr = <-readyAddr:
	case err := <-result:
		cancel()
		t.Fatalf("refundd stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("refundd not ready within 30s")
	}
	stopped := false
	d.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-result:
			return err
		case <-time.After(15 * time.Second):
			return fmt.Errorf("refundd did not stop within 15s")
		}
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	})
	// The test's own client authenticates and verifies the server as refundd does.
	auth, err := cfg.NATS.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL, auth...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if d.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	d.pub = producers.NewPublisher(d.js)
	return d
}

func (d *daemon) publish(t *testing.T, typ events.Type, account, id string, at time.Time, p events.Payload) {
	t.Helper()
	ev, err := events.New(typ, account, "/billing", id, at, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// get fetches path from the read API and decodes the JSON body into out.
func (d *daemon) get(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get("http://" + d.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %s is not JSON: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// waitFor polls check every 20ms until it returns "" or 15 seconds pass.
func waitFor(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(problem)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outbound reads every event the engine published for account so far.
func (d *daemon) outbound(t *testing.T, account string) []events.Event {
	t.Helper()
	return d.published(t, "refunds.*.*."+account)
}

// published reads every event the engine published so far on subjects matching filter.
func (d *daemon) published(t *testing.T, filter string) []events.Event {
	t.Helper()
	return d.streamed(t, producers.OutboundStream, filter)
}

// deadLetterReasons reads the reasons of every dead letter so far on subjects matching
// filter, by original subject. The bodies are not decoded: a dead letter need not be a
// valid event.
func (d *daemon) deadLetterReasons(t *testing.T, filter string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	cons, err := d.js.OrderedConsumer(ctx, consumers.DeadLetterStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		subject := msg.Headers().Get(events.HeaderOriginalSubject)
		out[subject] = append(out[subject], msg.Headers().Get(events.HeaderReason))
	}
}

// deadLettered reads every event the engine dead-lettered so far on subjects matching
// filter (deadletter.<original subject>).
func (d *daemon) deadLettered(t *testing.T, filter string) []events.Event {
	t.Helper()
	return d.streamed(t, consumers.DeadLetterStream, filter)
}

func (d *daemon) streamed(t *testing.T, stream, filter string) []events.Event {
	t.Helper()
	ctx := context.Background()
	cons, err := d.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		ev, err := events.Decode(msg.Data())
		if err != nil {
			t.Fatalf("the engine published an event that does not decode: %v", err)
		}
		out = append(out, ev)
	}
}

func TestRefunddEndToEnd(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-e2e"
	day := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	amount := func(s string) events.Amount { return events.MustAmount(s) }

	d.publish(t, events.AccountOpened, acct, "e-open", day, &events.AccountOpenedData{HolderType: "company", HolderName: "Acme Ltd", Verified: true})
	// The later recharge is published first: first recharged, first consumed goes by
	// the events' times, not by arrival.
	d.publish(t, events.TopupReceived, acct, "e-t2", day.Add(48*time.Hour), &events.TopupReceivedData{
		TopupID: "t2", Amount: amount("500.00"), Currency: "CNY", Channel: "online_banking", Banking: "personal", Bank: "CMB", PayerType: "company", PayerName: "Acme Ltd",
	})
	d.publish(t, events.TopupReceived, acct, "e-t1", day, &events.TopupReceivedData{
		TopupID: "t1", Amount: amount("300.00"), Currency: "CNY", Channel: "alipay", PayerType: "company", PayerName: "Acme Ltd",
	})
	d.publish(t, events.ConsumptionRecorded, acct, "e-c1", day.Add(72*time.Hour), &events.ConsumptionRecordedData{ConsumptionID: "c1", Amount: amount("350.25")})

	var view struct {
		AccountID    string `json:"account_id"`
		Currency     string `json:"currency"`
		Cash         string `json:"cash"`
		Withdrawable string `json:"withdrawable"`
	}
	waitFor(t, func() string {
		if code := d.get(t, "/v1/accounts/"+acct, &view); code != http.StatusOK || view.Cash != "449.75" {
			return fmt.Sprintf("account: HTTP %d, cash %q, want 449.75", code, view.Cash)
		}
		return ""
	})
	if view.Withdrawable != "449.75" || view.Currency != "CNY" || view.AccountID != acct {
		t.Errorf("account view %+v", view)
	}

	var topups []struct {
		TopupID            string     `json:"topup_id"`
		Remaining          string     `json:"remaining"`
		OriginalRouteUntil *time.Time `json:"original_route_until"`
	}
	d.get(t, "/v1/accounts/"+acct+"/topups", &topups)
	if len(topups) != 2 || topups[0].TopupID != "t1" || topups[0].Remaining != "0.00" || topups[1].Remaining != "449.75" {
		t.Fatalf("top-ups %+v: want t1 consumed first, then 50.25 of t2", topups)
	}
	if want := day.Add(48*time.Hour).AddDate(0, 0, 90); !topups[1].OriginalRouteUntil.Equal(want) {
		t.Errorf("CMB online banking original route until %s, want 90 days: %s", topups[1].OriginalRouteUntil, want)
	}

	var published []events.Event
	waitFor(t, func() string {
		published = d.outbound(t, acct)
		if len(published) != 3 {
			return fmt.Sprintf("%d outbound events for %s, want 3 balance changes", len(published), acct)
		}
		return ""
	})
	last := published[2].Payload.(*events.BalanceChangedData)
	if published[2].Type != events.BalanceChanged || last.CauseID != "e-c1" || last.Cash.String() != "449.75" {
		t.Errorf("last outbound event %s %+v", published[2].Type, last)
	}

	t.Run("unknown ids get 404 with a JSON error", func(t *testing.T) {
		for _, path := range []string{"/v1/accounts/acct-nobody", "/v1/accounts/acct-nobody/topups", "/v1/cases/w-nothing", "/v1/accounts/bad.id"} {
			var body struct{ Error string }
			if code := d.get(t, path, &body); code != http.StatusNotFound || body.Error == "" {
				t.Errorf("GET %s: HTTP %d %+v, want 404 with an error", path, code, body)
			}
		}
	})

	t.Run("health, readiness and metrics answer", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code := d.get(t, path, nil); code != http.StatusOK {
				t.Errorf("GET %s: HTTP %d", path, code)
			}
		}
		resp, err := http.Get("http://" + d.httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `refunds_intake_events_total{outcome="applied",type="billing.topup.received"} 2`) {
			t.Errorf("metrics do not count the two applied top-ups:\n%s", body)
		}
	})

	t.Run("a stop returns cleanly", func(t *testing.T) {
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
