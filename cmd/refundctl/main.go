// Command refundctl is the operator's CLI for the refund engine: publish inbound events
// the way upstream systems do, read accounts and cases from the read API, audit the
// engine against its inbound stream, watch what it publishes, and handle dead letters.
// "refundctl help" lists the commands, "refundctl help <command>" each one's flags.
//
//	refundctl publish -type billing.topup.received -account acct-42 -data '{"topup_id":"t1",...}'
//	refundctl account acct-42
//	refundctl cases acct-42
//	refundctl replay --all --scratch redis://127.0.0.1:6379/0
//	refundctl watch
//	refundctl deadletters [-replay] [-type T] [-reason TEXT]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/producers"
)

const usage = `usage: refundctl [<flags>] <command> [<args> ...]

The refund engine's operator tool: publish events the way upstream systems do, read
accounts and cases, audit the engine against its inbound stream, follow what it
publishes, and handle the events it refused.

Commands:
  publish      Validate and publish one event, or a file of events (JSON lines)
  account      Show an account's balances (GET /v1/accounts/{id})
  topups       Show an account's top-up orders (GET /v1/accounts/{id}/topups)
  case         Show a withdrawal or refund and its history (GET /v1/cases/{id})
  cases        List an account's cases, newest first (GET /v1/accounts/{id}/cases)
  replay       Rebuild one account, or audit all, from the inbound stream and compare
  watch        Print every event the engine publishes, and dead letters, as they come
  deadletters  List refused events with their reasons; replay them after a fix
  ended-cases-apart  Before a rollback: move ended cases out of accounts' hashes
  help         Show this help, or a command's: refundctl help <command>

Flags (before the command; each also read from its environment variable):
  -h, --help          Show this help
  --nats-url=URL      NATS server (REFUNDS_NATS_URL, default nats://127.0.0.1:4222);
                      user:password@ allowed
  --nats-creds=FILE   User JWT and NKey seed, operator mode (REFUNDS_NATS_CREDS)
  --nats-nkey=FILE    The user's NKey seed (REFUNDS_NATS_NKEY)
  --nats-ca=FILE      PEM CA that verifies the server; requires TLS (REFUNDS_NATS_CA)
  --nats-cert=FILE    Client certificate, with --nats-key=FILE (REFUNDS_NATS_CERT,
                      REFUNDS_NATS_KEY)
The read API's address comes from REFUNDS_HTTP_ADDR (default 127.0.0.1:8080).

Examples:
  refundctl publish -type billing.topup.received -account acct-42 \
      -data '{"topup_id":"t1","amount":"100.00","currency":"CNY","channel":"alipay","payer_type":"individual","payer_name":"Li Wei"}'
  refundctl publish -file events.jsonl
  refundctl cases acct-42 -limit 5
  refundctl replay acct-42
  refundctl replay --all --scratch redis://127.0.0.1:6379/0
  refundctl deadletters -type billing.topup.received -replay

See "refundctl help <command>" for a command's flags.
`

// commandHelp is each command's synopsis, for "refundctl help <command>"; the flags
// follow, from the command's own flag set.
var commandHelp = map[string]string{
	"publish": `usage: refundctl publish -type T -account A -data JSON [-id ID] [-time RFC3339] [-source S]
       refundctl publish -file EVENTS.jsonl

Validate and publish one CloudEvent on "<type>.<account>", with Nats-Msg-Id set to its
id; or validate every CloudEvent of a file (one per line) and, only if all are valid,
publish them asynchronously with progress.`,
	"account": "usage: refundctl account ID\n\nShow GET /v1/accounts/{id}: balances, reserve and what is not withdrawable.",
	"topups":  "usage: refundctl topups ID\n\nShow GET /v1/accounts/{id}/topups: each top-up order and what it may still withdraw.",
	"case":    "usage: refundctl case ID\n\nShow GET /v1/cases/{id}: a withdrawal or refund and its history.",
	"cases":   "usage: refundctl cases ACCOUNT [-offset N] [-limit M]\n\nList the account's cases, newest first, a page at a time.",
	"replay": `usage: refundctl replay ACCOUNT [--reserve-hold D] [--scratch REDIS_URL]
       refundctl replay --all [--reserve-hold D] [--scratch REDIS_URL]

Rebuild an account from its events in the inbound stream (kept 7 days) through the
engine's rules, in memory, and compare it field by field and case by case with the live
one. --all audits every account in the stream, with progress. --scratch also writes
each rebuilt account to refunds-scratch:replay:<account> in that Redis, kept 24 hours.`,
	"watch": "usage: refundctl watch\n\nPrint every event the engine publishes (refunds.>) and every dead letter, as they come; bank account numbers are masked.",
	"deadletters": `usage: refundctl deadletters [-type T] [-reason TEXT] [-replay]

List refused events with their reasons. With -replay, publish each again on its original
subject (e.g. after an upgrade that handles its type), and remove it from the
dead-letter stream once the inbound stream has it.`,
	"ended-cases-apart": `usage: refundctl ended-cases-apart [-redis-url URL] [-redis-cluster] [-redis-ca F] [-redis-cert F -redis-key F]

Before rolling back to a version of refundd older than the one that keeps ended cases
in their account's hash (4f29e3d), which cannot read an account holding one:
 1. run this: it marks the store to keep ended cases apart (the key
    rf:ended-cases-in-accounts-since, which instances read when they start), and moves
    every ended case to its account's hash of ended cases (rf:{pNN}:cases:<account>),
    an account at a time, atomically, with progress;
 2. restart every refundd instance, so that none keeps new cases in accounts;
 3. run this again: it must end with "done". It fails when an instance kept a case in
    an account while it ran (restart them, run it again).
Then roll back. Safe to run again, and while refundd runs. Before upgrading again,
delete rf:ended-cases-in-accounts-since. Redis settings as refundd's (REFUNDS_REDIS_URL,
default redis://127.0.0.1:6379/0, REFUNDS_REDIS_CLUSTER, REFUNDS_REDIS_CA...).`,
}

func main() {
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return // a command's flag set printed its own help
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "refundctl:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	var srv natsServer
	global := flag.NewFlagSet("refundctl", flag.ContinueOnError)
	global.StringVar(&srv.url, "nats-url", envOr("REFUNDS_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (env REFUNDS_NATS_URL)")
	srv.auth.RegisterFlags(global, os.Getenv)
	global.SetOutput(io.Discard) // usage is ours, below
	if err := global.Parse(args); errors.Is(err, flag.ErrHelp) {
		_, err = io.WriteString(out, usage)
		return err
	} else if err != nil {
		return fmt.Errorf("%w\n\n%s", err, usage)
	}
	if args = global.Args(); len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "help" {
		if len(args) == 1 {
			_, err := io.WriteString(out, usage)
			return err
		}
		help, ok := commandHelp[args[1]]
		if !ok {
			return fmt.Errorf("no command %q\n\n%s", args[1], usage)
		}
		_, err := fmt.Fprintln(out, help)
		return err
	}
	// Checked before any command runs, so a missing file is reported as such, not as a
	// connection failure.
	if _, err := srv.auth.Options(); err != nil {
		return err
	}
	httpAddr := envOr("REFUNDS_HTTP_ADDR", "127.0.0.1:8080")
	switch cmd, rest := args[0], args[1:]; cmd {
	case "publish":
		return publish(srv, rest, out)
	case "account":
		return get(httpAddr, "/v1/accounts/%s", rest, out)
	case "topups":
		return get(httpAddr, "/v1/accounts/%s/topups", rest, out)
	case "case":
		return get(httpAddr, "/v1/cases/%s", rest, out)
	case "cases":
		return cases(httpAddr, rest, out)
	case "replay":
		return replay(srv, httpAddr, rest, out)
	case "watch":
		return watch(srv, out)
	case "deadletters":
		return deadLetters(srv, rest, out)
	case "ended-cases-apart":
		return endedCasesApart(rest, out)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// natsServer is the NATS server refundctl talks to, and how it authenticates and
// verifies it (the same settings as refundd's).
type natsServer struct {
	url  string
	auth connect.NATS
}

// dial opens a NATS connection named name; the caller closes it.
func (s natsServer) dial(name string) (*nats.Conn, error) {
	opts, err := s.auth.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.url, append([]nats.Option{nats.Name(name)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redacted(s.url), err)
	}
	return nc, nil
}

// connect opens a NATS connection and a JetStream client on it; the caller closes nc.
func (s natsServer) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := s.dial(name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// cases shows one page of an account's cases.
func cases(httpAddr string, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("cases needs an account id")
	}
	fs := flag.NewFlagSet("cases", flag.ContinueOnError)
	offset := fs.Int("offset", 0, "where the page starts")
	limit := fs.Int("limit", 20, "cases per page, 1-100")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path := fmt.Sprintf("/v1/accounts/%%s/cases?offset=%d&limit=%d", *offset, *limit)
	return get(httpAddr, path, args[:1], out)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func publish(srv natsServer, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	typ := fs.String("type", "", "event type, e.g. billing.topup.received")
	account := fs.String("account", "", "account id (the CloudEvents subject)")
	data := fs.String("data", "{}", "the event's data, a JSON object")
	id := fs.String("id", "", "CloudEvents id (default: a random one)")
	at := fs.String("time", "", "when it happened, RFC 3339 (default: now)")
	source := fs.String("source", "/refundctl", "CloudEvents source")
	file := fs.String("file", "", "publish the events of a file instead: one CloudEvent per line (JSON lines), all checked before any is sent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file != "" {
		return publishFile(srv, *file, out)
	}
	spec, ok := events.Lookup(events.Type(*typ))
	if !ok {
		return fmt.Errorf("unknown event type %q", *typ)
	}
	payload, err := events.DecodePayload(spec.Type, []byte(*data))
	if err != nil {
		return err
	}
	when := time.Now().UTC()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("time: %w", err)
		}
		when = t
	}
	if *id == "" {
		*id = "evt-" + randomHex(8)
	}
	ev, err := events.New(spec.Type, *account, *source, *id, when, payload)
	if err != nil {
		return err
	}
	nc, js, err := srv.connect("refundctl")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := producers.NewPublisher(js).Publish(ctx, ev)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %s %s to %s (stream %s seq %d, duplicate=%t)\n", ev.Type, ev.ID, ev.NATSSubject(), ack.Stream, ack.Sequence, ack.Duplicate)
	return nil
}

func get(httpAddr, pathFormat string, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("give exactly one id")
	}
	u := "http://" + httpAddr + fmt.Sprintf(pathFormat, url.PathEscape(args[0]))
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var pretty any
	if json.Unmarshal(body, &pretty) == nil {
		body, _ = json.MarshalIndent(pretty, "", "  ")
	}
	fmt.Fprintln(out, string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return nil
}

func watch(srv natsServer, out io.Writer) error {
	nc, err := srv.dial("refundctl watch")
	if err != nil {
		return err
	}
	defer nc.Close()
	print := func(m *nats.Msg) {
		body := maskDestination(m.Data)
		if reason := m.Header.Get(events.HeaderReason); reason != "" {
			fmt.Fprintf(out, "%s (refused: %s) %s\n", m.Subject, reason, body)
			return
		}
		fmt.Fprintf(out, "%s %s\n", m.Subject, body)
	}
	for _, subject := range []string{"refunds.>", events.DeadLetterPrefix + ">"} {
		if _, err := nc.Subscribe(subject, print); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	return nil
}

// maskDestination masks the account number and payee of an event's destination, as
// the read API does: what watch prints ends up in terminals and tickets. An event
// without one, or that is not JSON, is printed as it is.
func maskDestination(body []byte) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(body, &ev) != nil {
		return body
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(ev["data"], &data) != nil || data["destination"] == nil {
		return body
	}
	var dst events.Destination
	if json.Unmarshal(data["destination"], &dst) != nil {
		return body
	}
	dst.AccountNo, dst.PayeeName = events.MaskAccountNo(dst.AccountNo), events.MaskName(dst.PayeeName)
	data["destination"], _ = json.Marshal(dst)
	ev["data"], _ = json.Marshal(data)
	masked, err := json.Marshal(ev)
	if err != nil {
		return body
	}
	return masked
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deadLetters lists the dead-letter stream, and with -replay publishes each matching
// event again, unchanged, on its original subject. The engine decides it afresh: a
// refused event left no idempotency record, so it is not taken for a duplicate.
func deadLetters(srv natsServer, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	typ := fs.String("type", "", "only events of this type")
	reason := fs.String("reason", "", "only events whose reason contains this text")
	replay := fs.Bool("replay", false, "publish the matching events again on their original subjects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, js, err := srv.connect("refundctl deadletters")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, consumers.DeadLetterStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	// Stop at what was there when we started: a replayed event refused again comes
	// back as a new dead letter, which this run must not replay again.
	last := info.State.LastSeq
	listed, replayed := 0, 0
	if info.State.Msgs == 0 {
		last = 0
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for last > 0 {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			last = 0 // this is the last one to look at
		}
		subject := msg.Headers().Get(events.HeaderOriginalSubject)
		why := msg.Headers().Get(events.HeaderReason)
		if (*typ != "" && typeOfSubject(subject) != *typ) || (*reason != "" && !strings.Contains(why, *reason)) {
			continue
		}
		listed++
		fmt.Fprintf(out, "%s\t%s\t%s\n", subject, why, meta.Timestamp.Format(time.RFC3339))
		if !*replay {
			continue
		}
		if !events.PublishableSubject(subject) {
			// Refused because its subject was not an event's (a wildcard, an empty
			// token): publishing it again would fan out or fail. It stays for a person.
			fmt.Fprintf(out, "not replayed: %q is not a subject an event can be published on\n", subject)
			continue
		}
		if msg.Headers().Get(events.HeaderTruncated) != "" {
			fmt.Fprintf(out, "not replayed: dead letter %d keeps only the start of its event\n", meta.Sequence.Stream)
			continue
		}
		// A Nats-Msg-Id of its own, not the event id (which may still be in the inbound
		// stream's duplicate window), and the same every time this dead letter is
		// replayed, so a rerun after a crash between publish and delete is dropped.
		republished := nats.NewMsg(subject)
		republished.Data = msg.Data()
		republished.Header.Set(nats.MsgIdHdr, fmt.Sprintf("replay-of-deadletter-%d", meta.Sequence.Stream))
		if _, err := js.PublishMsg(ctx, republished); err != nil {
			return fmt.Errorf("replay %s (dead letter %d): %w", subject, meta.Sequence.Stream, err)
		}
		if err := stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil {
			return fmt.Errorf("remove replayed dead letter %d: %w", meta.Sequence.Stream, err)
		}
		replayed++
	}
	if *replay {
		fmt.Fprintf(out, "replayed %d of %d dead letters\n", replayed, listed)
	} else {
		fmt.Fprintf(out, "%d dead letters\n", listed)
	}
	return nil
}

// typeOfSubject is the event type of an inbound subject "<type>.<account>".
func typeOfSubject(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i > 0 {
		return subject[:i]
	}
	return subject
}

// publishFile checks every event of a JSON-lines file, then publishes them all with
// the client upstream billing uses, reporting progress. A bad line stops it before
// anything is sent, naming the line.
func publishFile(srv natsServer, path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var evs []events.Event
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 0, 64*1024), events.MaxEventSize+1)
	for n := 1; lines.Scan(); n++ {
		line := bytes.TrimSpace(lines.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := events.Decode(line)
		if err != nil {
			return fmt.Errorf("%s line %d: %w; nothing was published", path, n, err)
		}
		evs = append(evs, ev)
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read %s: %w; nothing was published", path, err)
	}
	nc, js, err := srv.connect("refundctl")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	started := time.Now()
	res, err := producers.NewPublisher(js).PublishAll(ctx, evs, 256, 1000, func(done int) {
		fmt.Fprintf(os.Stderr, "\r%d/%d confirmed", done, len(evs))
	})
	fmt.Fprintln(os.Stderr)
	fmt.Fprintf(out, "published %d events from %s (%d new, %d duplicates dropped by JetStream) in %s\n",
		res.Published+res.Duplicates, path, res.Published, res.Duplicates, time.Since(started).Round(time.Millisecond))
	return err
}

// redacted is a URL fit for a message: its password is replaced by "xxxxx".
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
