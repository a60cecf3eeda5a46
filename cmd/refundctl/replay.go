package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// replayAccount rebuilds an account from its events in the inbound stream, in stream
// order, through the engine's own rules, and compares the result with what the running
// engine shows (GET /v1/accounts/{id}). It writes nothing: the rebuilt state lives in
// this process only. The inbound stream keeps events 7 days, so an account opened
// before that cannot be rebuilt, and says so.
func replayAccount(srv natsServer, httpAddr string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	hold := fs.Duration("reserve-hold", 24*time.Hour, "the reserve hold refundd runs with")
	if len(args) == 0 {
		return errors.New("replay needs an account id")
	}
	account := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if !events.ValidAccountID(account) {
		return fmt.Errorf("%q is not an account id", account)
	}
	nc, js, err := srv.connect("refundctl replay")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, consumers.InboundStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"*.*.*." + account},
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", consumers.InboundStream, err)
	}
	var history []events.Event
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break // nothing more within a second: the end of the stream
		}
		ev, err := events.Decode(msg.Data())
		if err != nil || ev.Subject != account {
			continue // refused by the engine too (a dead letter)
		}
		history = append(history, ev)
	}
	rules := state.DefaultRules()
	rules.ReserveHold = *hold
	rebuilt, applied, waiting, refused := rebuild(account, history, rules, time.Now())
	fmt.Fprintf(out, "%s: %d events in the inbound stream, %d applied, %d still waiting, %d refused\n",
		account, len(history), applied, waiting, refused)
	if !rebuilt.Opened {
		return fmt.Errorf("%s: its billing.account.opened is not in the stream (kept 7 days): it cannot be rebuilt", account)
	}
	live, err := liveAccount(httpAddr, account)
	if err != nil {
		return err
	}
	l := rebuilt.Ledger(rules)
	mine := map[string]string{
		"cash": l.Cash.StringFixed(2), "transferred": l.Transferred.StringFixed(2), "vouchers": l.Vouchers.StringFixed(2),
		"credit_notes": l.CreditNotes.StringFixed(2), "overdue": l.Overdue.StringFixed(2), "unsettled": l.Unsettled.StringFixed(2),
		"held": l.Held.StringFixed(2), "withdrawable": l.Withdrawable.StringFixed(2), "status": rebuilt.Status,
	}
	differ := 0
	for _, field := range []string{"status", "cash", "transferred", "vouchers", "credit_notes", "overdue", "unsettled", "held", "withdrawable"} {
		mark := "same"
		if mine[field] != live[field] {
			mark, differ = "DIFFERS", differ+1
		}
		fmt.Fprintf(out, "  %-13s rebuilt %-14s live %-14s %s\n", field, mine[field], live[field], mark)
	}
	if differ > 0 {
		return fmt.Errorf("%s: %d fields differ between the rebuilt and the live account", account, differ)
	}
	return nil
}

// rebuild applies history in order, as the intake would: an event that waits is tried
// again after the others, a refused one is skipped, and ended cases are kept for the
// events that name them. Due timers fire at now.
func rebuild(account string, history []events.Event, rules state.Rules, now time.Time) (a state.Account, applied, waiting, refused int) {
	a = state.NewAccount(account)
	ended := map[string]state.Case{}
	queue := append([]events.Event(nil), history...)
	for stalled := 0; len(queue) > 0 && stalled < len(queue); {
		ev := queue[0]
		queue = queue[1:]
		given := a
		if c, ok := ended[ev.CaseRef()]; ok {
			given = a.WithClosedCases(map[string]state.Case{c.ID: c})
		}
		d, err := state.Apply(given, ev, rules, now)
		var w *state.Waiting
		switch {
		case errors.As(err, &w):
			queue = append(queue, ev)
			stalled++
			continue
		case err != nil:
			refused++
			stalled = 0
			continue
		}
		stalled = 0
		applied++
		for _, c := range d.ClosedCases {
			ended[c.ID] = c
		}
		a = d.Account
	}
	if fired, err := state.FireDue(a, rules, now); err == nil {
		a = fired.Account
	}
	return a, applied, len(queue), refused
}

// liveAccount is GET /v1/accounts/{id} as strings.
func liveAccount(httpAddr, account string) (map[string]string, error) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + httpAddr + "/v1/accounts/" + account)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/accounts/%s: %s", account, resp.Status)
	}
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, err
	}
	live := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			live[k] = s
		}
	}
	return live, nil
}
