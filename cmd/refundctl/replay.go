package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/state"
)

// scratchTTL is how long a rebuilt account stays in its scratch key: long enough to
// look at after an audit, not so long that stale copies pile up.
const scratchTTL = 24 * time.Hour

// scratchKey is where a rebuilt account is written: outside every key the engine
// uses (those start with "rf:"), so nothing the engine reads can ever be touched.
func scratchKey(account string) string { return "refunds-scratch:replay:" + account }

// replay rebuilds accounts from their events in the inbound stream, in stream order,
// through the engine's own rules, and compares each with what the running engine
// shows (GET /v1/accounts/{id} and its cases). With --scratch it also writes each
// rebuilt account to a scratch key in Redis. The inbound stream keeps events 7 days,
// so an account opened before that cannot be rebuilt, and says so.
//
//	replay ACCOUNT [--reserve-hold D] [--scratch REDIS_URL]
//	replay --all   [--reserve-hold D] [--scratch REDIS_URL]   (an audit, with progress)
func replay(srv natsServer, httpAddr string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(out)
	hold := fs.Duration("reserve-hold", 24*time.Hour, "the reserve hold refundd runs with")
	all := fs.Bool("all", false, "audit every account in the inbound stream, with progress")
	scratch := fs.String("scratch", "", "a Redis URL: write each rebuilt account to refunds-scratch:replay:<account> (kept 24h)")
	var account string
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		account, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *all && account != "":
		return errors.New("replay takes an account id or --all, not both")
	case !*all && account == "":
		return errors.New("replay needs an account id, or --all for an audit of every account")
	case account != "" && !events.ValidAccountID(account):
		return fmt.Errorf("%q is not an account id", account)
	}
	var rdb redis.UniversalClient
	if *scratch != "" {
		var err error
		if rdb, err = connect.NewRedisClient(*scratch, false, connect.RedisTLS{}); err != nil {
			return fmt.Errorf("--scratch: %w", err)
		}
		defer rdb.Close()
	}
	rules := state.DefaultRules()
	rules.ReserveHold = *hold
	ctx := context.Background()

	nc, js, err := srv.connect("refundctl replay")
	if err != nil {
		return err
	}
	defer nc.Close()
	histories, order, err := readHistories(ctx, js, account, out)
	if err != nil {
		return err
	}
	if account != "" {
		return replayOne(ctx, account, histories[account], rules, httpAddr, rdb, out, true)
	}
	differ, unbuildable := 0, 0
	for i, acct := range order {
		err := replayOne(ctx, acct, histories[acct], rules, httpAddr, rdb, io.Discard, false)
		var gone *notRebuildable
		switch {
		case errors.As(err, &gone):
			unbuildable++
		case err != nil:
			differ++
			fmt.Fprintf(out, "DIFFERS %s: %v\n", acct, err)
		}
		if done := i + 1; done%500 == 0 || done == len(order) {
			fmt.Fprintf(out, "compared %d of %d accounts: %d differ, %d opened before the stream's window\n", done, len(order), differ, unbuildable)
		}
	}
	fmt.Fprintf(out, "audit: %d accounts, %d differ, %d could not be rebuilt (opened more than the stream's 7 days ago)\n", len(order), differ, unbuildable)
	if differ > 0 {
		return fmt.Errorf("%d of %d accounts differ from their replay", differ, len(order))
	}
	return nil
}

// readHistories reads the inbound stream, or one account's part of it, up to its last
// message when the read began, and groups the events by account in stream order.
// Events that do not decode are skipped: the engine refused them too.
func readHistories(ctx context.Context, js jetstream.JetStream, account string, out io.Writer) (map[string][]events.Event, []string, error) {
	stream, err := js.Stream(ctx, consumers.InboundStream)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", consumers.InboundStream, err)
	}
	last, total := stream.CachedInfo().State.LastSeq, stream.CachedInfo().State.Msgs
	cfg := jetstream.OrderedConsumerConfig{}
	if account != "" {
		cfg.FilterSubjects = []string{"*.*.*." + account}
	}
	cons, err := js.OrderedConsumer(ctx, consumers.InboundStream, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", consumers.InboundStream, err)
	}
	histories := map[string][]events.Event{}
	var order []string
	read := 0
	for last > 0 {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", consumers.InboundStream, err)
		}
		n, end := 0, false
		for msg := range batch.Messages() {
			n++
			read++
			if meta, err := msg.Metadata(); err == nil && meta.Sequence.Stream >= last {
				end = true
			}
			ev, err := events.Decode(msg.Data())
			if err != nil || (account != "" && ev.Subject != account) {
				continue
			}
			if _, seen := histories[ev.Subject]; !seen {
				order = append(order, ev.Subject)
			}
			histories[ev.Subject] = append(histories[ev.Subject], ev)
			if account == "" && read%20000 == 0 {
				fmt.Fprintf(out, "read %d of %d events\n", read, total)
			}
		}
		if end || n == 0 {
			break // the end as it was when the read began (or, filtered, nothing more)
		}
	}
	if account == "" {
		fmt.Fprintf(out, "read %d events of %d accounts\n", read, len(order))
	}
	return histories, order, nil
}

// notRebuildable: the account's opening is no longer in the stream.
type notRebuildable struct{ account string }

func (e *notRebuildable) Error() string {
	return e.account + ": its billing.account.opened is not in the stream (kept 7 days): it cannot be rebuilt"
}

// replayOne rebuilds one account and compares it with the live one, field by field
// and case by case; it returns an error when they differ.
func replayOne(ctx context.Context, account string, history []events.Event, rules state.Rules, httpAddr string, rdb redis.UniversalClient, out io.Writer, verbose bool) error {
	r := state.Rebuild(account, history, rules, time.Now())
	fmt.Fprintf(out, "%s: %d events in the inbound stream, %d applied, %d still waiting, %d refused\n",
		account, len(history), r.Applied, r.Waiting, r.Refused)
	if !r.Account.Opened {
		return &notRebuildable{account: account}
	}
	rebuilt := rebuiltView(r, rules)
	if rdb != nil {
		doc, err := json.Marshal(rebuilt)
		if err != nil {
			return err
		}
		if err := rdb.Set(ctx, scratchKey(account), doc, scratchTTL).Err(); err != nil {
			return fmt.Errorf("write %s: %w", scratchKey(account), err)
		}
		fmt.Fprintf(out, "  rebuilt account written to %s (expires in %s)\n", scratchKey(account), scratchTTL)
	}
	live, err := liveView(httpAddr, account)
	if err != nil {
		return err
	}
	var differ []string
	for _, field := range comparedFields {
		mark := "same"
		if rebuilt.Fields[field] != live.Fields[field] {
			mark = "DIFFERS"
			differ = append(differ, field)
		}
		if verbose {
			fmt.Fprintf(out, "  %-13s rebuilt %-14s live %-14s %s\n", field, rebuilt.Fields[field], live.Fields[field], mark)
		}
	}
	ids := map[string]bool{}
	for id := range rebuilt.Cases {
		ids[id] = true
	}
	for id := range live.Cases {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		mark := "same"
		if rebuilt.Cases[id] != live.Cases[id] {
			mark = "DIFFERS"
			differ = append(differ, "case "+id)
		}
		if verbose {
			fmt.Fprintf(out, "  case %-8s rebuilt %-30s live %-30s %s\n", id, orNone(rebuilt.Cases[id]), orNone(live.Cases[id]), mark)
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("%s: %d differ between the rebuilt and the live account: %v", account, len(differ), differ)
	}
	return nil
}

// comparedFields are the read API's account fields a replay checks.
var comparedFields = []string{"status", "cash", "transferred", "vouchers", "credit_notes", "overdue", "unsettled", "held", "withdrawable"}

// accountView is an account as the read API shows it, reduced to what a replay
// compares: the fields as strings, and each case as "status amount".
type accountView struct {
	Account string            `json:"account_id"`
	Fields  map[string]string `json:"fields"`
	Cases   map[string]string `json:"cases"`
}

func rebuiltView(r state.Replay, rules state.Rules) accountView {
	l := r.Account.Ledger(rules)
	v := accountView{Account: r.Account.ID, Cases: map[string]string{}, Fields: map[string]string{
		"cash": l.Cash.StringFixed(2), "transferred": l.Transferred.StringFixed(2), "vouchers": l.Vouchers.StringFixed(2),
		"credit_notes": l.CreditNotes.StringFixed(2), "overdue": l.Overdue.StringFixed(2), "unsettled": l.Unsettled.StringFixed(2),
		"held": l.Held.StringFixed(2), "withdrawable": l.Withdrawable.StringFixed(2), "status": r.Account.Status,
	}}
	for id, c := range r.Ended {
		v.Cases[id] = c.Status + " " + c.Amount.StringFixed(2)
	}
	for id, c := range r.Account.Cases { // an appealed case is open again: the open copy wins
		v.Cases[id] = c.Status + " " + c.Amount.StringFixed(2)
	}
	return v
}

// liveView reads GET /v1/accounts/{id} and every page of GET /v1/accounts/{id}/cases.
func liveView(httpAddr, account string) (accountView, error) {
	v := accountView{Account: account, Fields: map[string]string{}, Cases: map[string]string{}}
	var raw map[string]any
	if err := getJSON(httpAddr, "/v1/accounts/"+url.PathEscape(account), &raw); err != nil {
		return v, err
	}
	for k, val := range raw {
		if s, ok := val.(string); ok {
			v.Fields[k] = s
		}
	}
	for offset := 0; ; {
		var page struct {
			Cases []struct {
				ID     string `json:"case_id"`
				Status string `json:"status"`
				Amount string `json:"amount"`
			} `json:"cases"`
			NextOffset *int `json:"next_offset"`
		}
		if err := getJSON(httpAddr, fmt.Sprintf("/v1/accounts/%s/cases?offset=%d&limit=100", url.PathEscape(account), offset), &page); err != nil {
			return v, err
		}
		for _, c := range page.Cases {
			v.Cases[c.ID] = c.Status + " " + c.Amount
		}
		if page.NextOffset == nil {
			return v, nil
		}
		offset = *page.NextOffset
	}
}

func getJSON(httpAddr, path string, into any) error {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + httpAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
