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
	replay := state.Rebuild(account, history, rules, time.Now())
	rebuilt := replay.Account
	fmt.Fprintf(out, "%s: %d events in the inbound stream, %d applied, %d still waiting, %d refused\n",
		account, len(history), replay.Applied, replay.Waiting, replay.Refused)
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
