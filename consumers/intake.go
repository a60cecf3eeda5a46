package consumers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/fnv1a"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/state"
)

// Store is what the intake needs from persistence: load a batch, save its steps.
type Store interface {
	// Load reads the accounts and, per event, the content digest it was applied
	// with ("" for an event not applied yet).
	Load(ctx context.Context, accountIDs []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error)
	Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error)
	// SameHolderOverdue lists, per holder name, the accounts under it with an overdue
	// amount: the risk rule of a withdrawal needs it.
	SameHolderOverdue(ctx context.Context, holderNames []string) (map[string][]string, error)
}

// Config tunes the intake. Zero values take the defaults stated on each field.
type Config struct {
	// BatchSize is the most events decided and saved together. Default 500. A batch
	// never waits to fill: it is what came for a worker's accounts while the worker was
	// busy with the one before (see inbox), so it is one event when events trickle in
	// and grows with the load.
	BatchSize int
	// Workers is how many batches are decided and saved at once. Each owns a share of
	// the accounts (by a hash of the account id), so they never race on an account and
	// an account's events keep their order. Default GOMAXPROCS, at most 8.
	Workers int
	// MaxWait is how long an event may wait for something it depends on (its account
	// being opened, the case it answers) before it is dead-lettered. Default 24 hours.
	MaxWait time.Duration
	// Rules are the business rules. Default state.DefaultRules().
	Rules *state.Rules
	// Clock is read once per batch for the decisions' "now". Default time.Now.
	Clock func() time.Time
	// Relay is this process's outbox relay (producers.Relay), handed the outbound
	// events each batch saved so it publishes them at once instead of reading them
	// at its next poll. Nil hands nothing.
	Relay Handoff
	// Metrics receives counts; nil records nothing.
	Metrics *Metrics
	// Tracer records a span per event, a child of the trace context its publisher
	// sent (traceparent header) or a new root, and the outbound events it causes carry
	// that span's context. Nil records nothing: the outbound events then carry the
	// inbound trace context as received, and none when it had none.
	Tracer trace.Tracer
}

// Handoff is what the intake tells the outbox relay of its process.
type Handoff interface {
	// Hand gives it the outbound events a batch saved, in the order they were saved.
	Hand(saved []state.OutboxEntry)
	// SavedUnhanded says the outbox may hold events that will not be handed (a commit
	// whose outcome is not known): what is handed after must not overtake them.
	SavedUnhanded()
}

// Intake consumes inbound events from a JetStream pull consumer.
type Intake struct {
	js    jetstream.JetStream
	cons  jetstream.Consumer
	store Store
	log   zerolog.Logger
	cfg   Config
	rules state.Rules

	// handle is processBatch wrapped in the configured middleware.
	handle BatchHandler

	// beforeAck, when set, runs after a batch is saved and before it is acknowledged;
	// an error stops the intake without acknowledging, as a crash at that point would.
	beforeAck func() error
}

// NewIntake returns an intake reading from cons and saving to store.
func NewIntake(js jetstream.JetStream, cons jetstream.Consumer, store Store, log zerolog.Logger, cfg Config) *Intake {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 24 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = min(runtime.GOMAXPROCS(0), 8)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	rules := state.DefaultRules()
	if cfg.Rules != nil {
		rules = *cfg.Rules
	}
	in := &Intake{js: js, cons: cons, store: store, log: log, cfg: cfg, rules: rules}
	cfg.Metrics.setWorkers(cfg.Workers)
	in.handle = chain(in.processBatch, withMetrics(cfg.Metrics), withTracing(cfg.Tracer))
	return in
}

// Run consumes until ctx is cancelled. Then it stops fetching, decides and saves the
// events it already holds, acknowledges them, and returns nil.
//
// Each worker decides and saves the events of its share of the accounts (by a hash of
// the account id), so workers never race on an account and an account's events keep
// their order; one worker's Redis round trip overlaps another's decisions. Fetching
// goes on while they work: what is fetched for a worker waits in its inbox, and the
// worker takes it all (up to BatchSize) as its next batch once it is free.
func (in *Intake) Run(ctx context.Context) error {
	it, err := in.cons.Messages(jetstream.PullMaxMessages(2 * in.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("start consuming: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error
	)
	inboxes := make([]*inbox, in.cfg.Workers)
	for w := range inboxes {
		inboxes[w] = newInbox(in.cfg.BatchSize)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs := inboxes[w].take()
				if msgs == nil {
					return
				}
				mu.Lock()
				stopping := failure != nil
				mu.Unlock()
				if stopping {
					continue // what is left is redelivered after the ack wait
				}
				if _, err := in.handle(context.WithoutCancel(ctx), in.decodeBatch(msgs)); err != nil {
					mu.Lock()
					if failure == nil {
						failure = err
					}
					mu.Unlock()
					it.Stop()
				}
			}
		}()
	}
	fetched := in.fetch(ctx, it, inboxes)
	for _, box := range inboxes {
		box.close()
	}
	wg.Wait()
	if failure != nil {
		return failure
	}
	return fetched
}

// decodeBatch decodes a worker's batch, timed as its decode phase.
func (in *Intake) decodeBatch(msgs []jetstream.Msg) *Batch {
	clock := in.cfg.Metrics.startPhases()
	defer clock.lap(phaseDecode)
	return NewBatch(msgs)
}

// fetch hands each fetched message to the inbox of the worker that owns its account,
// until the iterator closes: nil when ctx was cancelled (drained on shutdown), else an
// error.
func (in *Intake) fetch(ctx context.Context, it jetstream.MessagesContext, inboxes []*inbox) error {
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() != nil {
				return nil // drained on shutdown
			}
			// The consumer or the connection is gone for good: stopping with an error
			// lets the process restart and create the consumer again.
			return fmt.Errorf("inbound events stopped: %w", err)
		}
		if err != nil {
			in.log.Warn().Err(err).Msg("fetch inbound events")
			continue
		}
		inboxes[shareOf(msg.Subject(), len(inboxes))].put(msg)
	}
}

// shareOf is the worker that owns the account a message is for, by the last token of
// its subject: an event's subject ends with its account id, and one that does not
// (it is refused when decoded) goes wherever that token says.
func shareOf(subject string, workers int) int {
	if workers == 1 {
		return 0
	}
	return int(fnv1a.Sum32(subject[strings.LastIndexByte(subject, '.')+1:]) % uint32(workers))
}

// inbox holds the fetched messages of one worker's accounts, in the order they came,
// until the worker takes them as its next batch. A batch is thus whatever came while
// the worker was busy with the one before: a lone event goes at once instead of
// waiting for others that may never come (batches used to linger 2 to 5 ms for that),
// and under load batches grow by themselves, up to the batch size. An inbox holding
// a full batch makes the fetcher wait: what it has not taken stays with JetStream.
type inbox struct {
	mu     sync.Mutex
	msgs   []jetstream.Msg
	closed bool
	size   int
	// ready and room wake the worker (messages or close) and the fetcher (room).
	ready, room chan struct{}
}

func newInbox(size int) *inbox {
	return &inbox{size: size, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// put adds a message, waiting while the inbox holds a full batch.
func (b *inbox) put(msg jetstream.Msg) {
	b.mu.Lock()
	for len(b.msgs) >= b.size {
		b.mu.Unlock()
		<-b.room
		b.mu.Lock()
	}
	b.msgs = append(b.msgs, msg)
	b.mu.Unlock()
	wake(b.ready)
}

// take waits for messages and returns them, at most a batch, oldest first; nil once
// the inbox is closed and empty.
func (b *inbox) take() []jetstream.Msg {
	for {
		b.mu.Lock()
		if n := min(len(b.msgs), b.size); n > 0 {
			// Capped at n: what is put after lands past the batch, never in it.
			msgs := b.msgs[:n:n]
			b.msgs = b.msgs[n:]
			b.mu.Unlock()
			wake(b.room)
			return msgs
		}
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return nil
		}
		<-b.ready
	}
}

// close tells the worker no more messages come: it takes what is left, then stops.
func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	wake(b.ready)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Batch is a fetched batch of messages, decoded.
type Batch struct {
	Msgs    []jetstream.Msg
	decoded []decodedMsg
}

// NewBatch decodes msgs, a large batch on every core.
func NewBatch(msgs []jetstream.Msg) *Batch {
	return &Batch{Msgs: msgs, decoded: decodeAll(msgs)}
}

// pending is one fetched message on its way through a batch.
type pending struct {
	msg   jetstream.Msg
	index int // in the fetched batch's Msgs
	event events.Event
	// trace is the trace context the event's outbound events carry (decodedMsg.trace).
	trace trace.SpanContext
	step  int // index into the batch's steps, or -1
	// sameAs is the index of the batch's first copy of the same event (or of another
	// event announcing the same fact), or -1. A copy is settled like its first copy.
	sameAs int
	// undecided is why the event was not decided (a refusal, a wait).
	undecided error
	// fact and factDigest are the event's business fact, computed once: the digest
	// encodes and hashes the payload. digest fingerprints the whole event's content.
	fact, factDigest, digest string
	settled                  settlement
	delay                    time.Duration // of a nak
	// outcome is what became of the event, for metrics: applied, duplicate, conflict,
	// failed, refused, waiting.
	outcome string
}

// settlement is what was done with a message, so its copies can be done the same.
type settlement int

const (
	unsettled settlement = iota
	acked
	naked      // to be delivered again after delay
	terminated // dead-lettered
)

func (p *pending) ack(outcome string) {
	p.msg.Ack()
	p.settled, p.outcome = acked, outcome
}

func (p *pending) nak(delay time.Duration, outcome string) {
	p.msg.NakWithDelay(delay)
	p.settled, p.delay, p.outcome = naked, delay, outcome
}

// settleLike settles a copy exactly as its first copy was settled: acking a copy of an
// event that was nak'd would remove the event from the stream (acks go by stream
// sequence) and lose it.
func (p *pending) settleLike(first *pending) {
	switch first.settled {
	case acked:
		p.ack("duplicate")
	case terminated:
		p.msg.Term()
		p.settled, p.outcome = terminated, "duplicate"
	case naked:
		p.nak(first.delay, "duplicate")
	default:
		p.nak(time.Second, "duplicate")
	}
}

// batch is one batch on its way through decide, commit and settle.
type batch struct {
	now   time.Time
	items []pending
	steps []state.Step
	// malformed are the messages that did not decode, already parked.
	malformed int
}

// processBatch decides, saves and settles one batch. Each event keeps its own
// semantics: it is decided on the state left by the batch's earlier events of the same
// account, and saved as its own atomic step. Every message is settled exactly once,
// after the save. Only a failure to stop (beforeAck) is returned; every other failure is
// settled per message (nak, dead letter) so the intake keeps going.
func (in *Intake) processBatch(ctx context.Context, fetched *Batch) ([]Settled, error) {
	clock := in.cfg.Metrics.startPhases()
	// Whatever runs after the last lap settles messages: parking, acking, retrying.
	defer clock.lap(phaseSettle)
	b := &batch{now: in.cfg.Clock()}
	report := in.admit(ctx, fetched, b)
	if len(b.items) == 0 {
		return report, nil
	}
	clock.lap(phaseSettle) // admit parked the messages that did not decode
	if err := in.decide(ctx, b, &clock); err != nil {
		clock.lap(phaseLoad) // only reading Redis fails
		in.log.Error().Err(err).Int("events", len(b.items)).Msg("load batch; will retry")
		return in.retryUnsettled(b, report), nil
	}
	clock.lap(phaseDecide)
	results, err := in.store.Commit(ctx, b.steps)
	clock.lap(phaseSave)
	if err != nil {
		// Redis may have saved some steps before the error: their outbound events
		// are in the outbox, not handed.
		if in.cfg.Relay != nil {
			in.cfg.Relay.SavedUnhanded()
		}
		in.log.Error().Err(err).Int("steps", len(b.steps)).Msg("save batch; will retry")
		return in.retryUnsettled(b, report), nil
	}
	if in.beforeAck != nil {
		if err := in.beforeAck(); err != nil {
			return nil, err
		}
	}
	saved := in.settle(ctx, b, results)
	if in.cfg.Relay != nil {
		if !everyOutboundSaved(b.steps, results) {
			in.cfg.Relay.SavedUnhanded()
		}
		in.cfg.Relay.Hand(saved)
	}
	return reportOf(b, report), nil
}

// admit parks the messages of a fetched batch that did not decode (fetch decoded them
// on every core), and keeps the others as the batch's items, with their digests.
func (in *Intake) admit(ctx context.Context, fetched *Batch, b *batch) []Settled {
	msgs := fetched.Msgs
	var report []Settled
	b.items = make([]pending, 0, len(msgs))
	for i, d := range fetched.decoded {
		if d.err != nil {
			in.park(ctx, msgs[i], d.err.Error())
			report = append(report, Settled{Msg: i, Type: "malformed", Outcome: "refused"})
			continue
		}
		it := pending{msg: msgs[i], index: i, event: d.event, trace: d.trace, step: -1, sameAs: -1, fact: d.event.FactID(), digest: d.digest}
		if it.fact != "" {
			it.factDigest = d.factDigest
		}
		b.items = append(b.items, it)
	}
	return report
}

// decide loads the batch's accounts and decides each event on the state the batch's
// earlier events of its account left, building the batch's steps.
func (in *Intake) decide(ctx context.Context, b *batch, clock *phaseClock) error {
	var accountIDs []string
	refs := make([]state.EventRef, len(b.items))
	known := make(map[string]bool)
	for i, it := range b.items {
		refs[i] = state.EventRef{AccountID: it.event.Subject, EventID: it.event.ID, CaseID: it.event.CaseRef()}
		if !known[it.event.Subject] {
			known[it.event.Subject] = true
			accountIDs = append(accountIDs, it.event.Subject)
		}
	}
	accounts, seen, err := in.store.Load(ctx, accountIDs, refs)
	if err != nil {
		return err
	}
	if err := in.loadRisk(ctx, b, accounts); err != nil {
		return err
	}
	clock.lap(phaseLoad)
	b.steps = make([]state.Step, 0, len(b.items))
	firstCopy := make(map[copyKey]int, len(b.items))
	for i := range b.items {
		it, ref := &b.items[i], refs[i]
		if applied := seen[ref]; applied != "" {
			if applied != "1" && !events.SameDigest(applied, it.digest) {
				in.parkItem(ctx, it, idConflict(it.event))
				continue
			}
			// Already saved: acknowledging it can lose nothing.
			it.ack("duplicate")
			continue
		}
		if first, ok := in.firstCopyOf(firstCopy, it, i); ok {
			it.sameAs = first
			continue
		}
		current := accounts[ref.AccountID]
		if current.Err != nil {
			// This account's document cannot be read: its events wait (and are
			// dead-lettered after MaxWait), the other accounts go on.
			it.undecided = &state.Waiting{Reason: "the stored account cannot be read: " + current.Err.Error()}
			continue
		}
		decision, err := state.Apply(current.Account, it.event, in.rules, b.now)
		if err != nil {
			it.undecided = err
			continue
		}
		step := decision.Step(ref, current.Version)
		step.Fact, step.FactDigest, step.Digest = it.fact, it.factDigest, it.digest
		if len(step.Outbound) > 0 {
			// Saved with the outbound events, in the same atomic step: the relay
			// publishes them in the trace of the event that caused them. Nothing to
			// format (and nothing allocated) for an event that came without one.
			step.TraceParent, step.TraceState = tracing.Format(it.trace)
		}
		if decision.Changed {
			accounts[ref.AccountID] = state.Versioned{Account: decision.Account, Version: step.NextVersion()}
		}
		it.step = len(b.steps)
		b.steps = append(b.steps, step)
	}
	return nil
}

// loadRisk gives the accounts of the batch's withdrawal requests what the risk rule
// needs: the accounts of holders of the same name that have an overdue amount. Only
// batches with a request pay the extra read.
func (in *Intake) loadRisk(ctx context.Context, b *batch, accounts map[string]state.Versioned) error {
	var names []string
	holderOf := make(map[string]string)
	for _, it := range b.items {
		if it.event.Type != events.WithdrawalRequested {
			continue
		}
		id := it.event.Subject
		if _, done := holderOf[id]; done {
			continue
		}
		name := accounts[id].Account.HolderName
		holderOf[id] = name
		if name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	overdue, err := in.store.SameHolderOverdue(ctx, names)
	if err != nil {
		return err
	}
	for id, name := range holderOf {
		v := accounts[id]
		v.Account = v.Account.WithSameHolderOverdue(overdue[name])
		accounts[id] = v
	}
	return nil
}

// settle acknowledges, retries or parks every message of a saved batch by what became
// of its step, and returns the outbound events the batch saved, in order.
func (in *Intake) settle(ctx context.Context, b *batch, results []state.StepResult) []state.OutboxEntry {
	// An account whose state after this batch is not what the batch decided: a step
	// conflicted (another instance wrote first), the store refused one, or a step that
	// changed the account turned out a duplicate. Its refusals were decided on state
	// that was not saved, and are decided again.
	unsaved := make(map[string]bool)
	for i, r := range results {
		switch o := r.Outcome; {
		case o == state.Conflict, o == state.Failed, o == state.FactConflict, o == state.IDConflict, o == state.Duplicate && b.steps[i].Account != nil:
			unsaved[b.steps[i].Event.AccountID] = true
		}
	}
	var saved []state.OutboxEntry
	for i := range b.items {
		it := &b.items[i]
		switch {
		case it.settled != unsettled || it.sameAs >= 0:
		case it.step >= 0:
			r := results[it.step]
			switch r.Outcome {
			case state.Applied:
				saved = append(saved, r.Saved...)
				in.cfg.Metrics.countSaved(b.steps[it.step].Outbound)
				it.ack("applied")
			case state.Duplicate:
				it.ack("duplicate")
			case state.Conflict:
				it.nak(conflictBackoff(), "conflict")
			case state.Failed:
				in.settleWaiting(ctx, it, "the store refused to save it: "+r.Reason, b.now)
			case state.FactConflict:
				in.parkItem(ctx, it, fmt.Sprintf("%s was already counted with other data", it.fact))
			case state.IDConflict:
				in.parkItem(ctx, it, idConflict(it.event))
			}
		default:
			in.settleUndecided(ctx, it, unsaved[it.event.Subject], b.now)
		}
	}
	for i := range b.items {
		if it := &b.items[i]; it.sameAs >= 0 {
			it.settleLike(&b.items[it.sameAs])
		}
	}
	return saved
}

// everyOutboundSaved says every outbound event the steps saved is in their results'
// Saved: false when a step failed in Redis (it may have written some before its
// error) or an applied step's reply did not name where its events are.
func everyOutboundSaved(steps []state.Step, results []state.StepResult) bool {
	for i, r := range results {
		switch {
		case r.Outcome == state.Failed && len(steps[i].Outbound) > 0:
			return false
		case r.Outcome == state.Applied && len(r.Saved) != len(steps[i].Outbound):
			return false
		}
	}
	return true
}

// reportOf is what became of every message of the batch, for the middleware.
func reportOf(b *batch, report []Settled) []Settled {
	for _, it := range b.items {
		report = append(report, Settled{Msg: it.index, Type: it.event.Type, Outcome: it.outcome})
	}
	return report
}

// firstCopyOf reports the batch's first item that is the same event as item i, or
// announces the same fact, registering i as a first copy otherwise.
func (in *Intake) firstCopyOf(firstCopy map[copyKey]int, it *pending, i int) (int, bool) {
	// The same id with other content is not a copy: it is decided on its own, and
	// refused as a conflict when saved.
	keys := [2]copyKey{{of: copyOfEvent, account: it.event.Subject, id: it.event.ID, digest: it.digest}}
	n := 1
	if it.fact != "" {
		// The same fact with the same data; with other data it is decided on its own
		// and refused as a contradiction when saved.
		keys[1] = copyKey{of: copyOfFact, account: it.event.Subject, id: it.fact, digest: it.factDigest}
		n = 2
	}
	for _, k := range keys[:n] {
		if first, ok := firstCopy[k]; ok {
			return first, true
		}
	}
	for _, k := range keys[:n] {
		firstCopy[k] = i
	}
	return 0, false
}

// copyKey is what makes two items of a batch copies: the same event (its id and
// content) or the same fact (its id and data) of one account. A struct, not a joined
// string, so looking one up builds nothing.
type copyKey struct {
	of                  copyOf
	account, id, digest string
}

type copyOf uint8

const (
	copyOfEvent copyOf = iota
	copyOfFact
)

// maxDeadLetterBody leaves room under NATS's 1 MiB for a dead letter's headers: the
// reason (truncateReason), the original subject, the message id.
const maxDeadLetterBody = events.MaxEventSize - 16*1024

// truncateReason bounds a reason, which may quote what the sender sent.
func truncateReason(reason string) string {
	const max = 2048
	if len(reason) <= max {
		return reason
	}
	return reason[:max] + "…"
}

// idConflict is the reason an event is parked whose id was applied with other content:
// a publisher reused an id, and dropping it as a duplicate would lose it silently.
func idConflict(ev events.Event) string {
	return fmt.Sprintf("event id %s was already applied to account %s with other content; ids must not be reused", ev.ID, ev.Subject)
}

// conflictBackoff spreads the retries of events that lost a race with another
// instance, so the instances do not collide again at once.
func conflictBackoff() time.Duration {
	return 20*time.Millisecond + rand.N(80*time.Millisecond)
}

type decodedMsg struct {
	event              events.Event
	digest, factDigest string
	err                error
	// trace is the trace context the message's publisher sent (not valid when it sent
	// none); the tracing middleware replaces it with the event's own span's.
	trace trace.SpanContext
}

// decodeAll decodes a batch, a large one on every core: decoding and validating is a
// large part of the intake's work, and it does not depend on order. The results keep
// the batch's order.
func decodeAll(msgs []jetstream.Msg) []decodedMsg {
	out := make([]decodedMsg, len(msgs))
	decode := func(first, step int) {
		for i := first; i < len(msgs); i += step {
			out[i].trace = tracing.FromHeader(msgs[i].Headers())
			out[i].event, out[i].err = decodeInbound(msgs[i])
			if out[i].err == nil {
				out[i].digest, out[i].factDigest = out[i].event.Digests()
			}
		}
	}
	// A few events decode faster than goroutines start: a batch taken as events
	// trickle in is one or two.
	workers := min(runtime.GOMAXPROCS(0), 1+len(msgs)/decodePerGoroutine)
	if workers == 1 {
		decode(0, 1)
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { decode(w, workers) })
	}
	wg.Wait()
	return out
}

// decodePerGoroutine is about how many events make it worth decoding on one more core.
const decodePerGoroutine = 16

// decodeInbound decodes and validates an event, and refuses one whose NATS subject does
// not match its envelope: the subject is what publishers are authorised on, so an event
// claiming another account than its subject names is not to be trusted.
func decodeInbound(msg jetstream.Msg) (events.Event, error) {
	ev, err := events.Decode(msg.Data())
	if err != nil {
		return events.Event{}, err
	}
	spec, _ := events.Lookup(ev.Type)
	if spec.Direction != events.Inbound {
		return events.Event{}, fmt.Errorf("%s is an outbound type; the engine does not consume it", ev.Type)
	}
	if want := ev.NATSSubject(); msg.Subject() != want {
		return events.Event{}, fmt.Errorf("published on %s but the event says %s", msg.Subject(), want)
	}
	return ev, nil
}

// settleUndecided handles an event state.Apply did not decide: a refusal is parked as a
// dead letter (unless the account's state in this batch was not saved: then it is
// decided again), a wait is retried with backoff until MaxWait, anything else is
// retried.
func (in *Intake) settleUndecided(ctx context.Context, it *pending, accountUnsaved bool, now time.Time) {
	var refusal *state.Refusal
	var waiting *state.Waiting
	switch {
	case errors.As(it.undecided, &waiting):
		in.settleWaiting(ctx, it, waiting.Reason, now)
	case errors.As(it.undecided, &refusal) && accountUnsaved:
		it.nak(conflictBackoff(), "conflict")
	case errors.As(it.undecided, &refusal):
		in.parkItem(ctx, it, refusal.Reason)
	default:
		in.log.Error().Err(it.undecided).Str("event_id", it.event.ID).Str("type", string(it.event.Type)).Msg("decide event; will retry")
		in.retry(ctx, it, "deciding it failed: "+it.undecided.Error())
	}
}

// settleWaiting retries an event that cannot be applied yet, less and less often, and
// dead-letters it with the reason once it has waited longer than MaxWait.
func (in *Intake) settleWaiting(ctx context.Context, it *pending, reason string, now time.Time) {
	meta, metaErr := it.msg.Metadata()
	if metaErr == nil && now.Sub(meta.Timestamp) > in.cfg.MaxWait {
		in.parkItem(ctx, it, fmt.Sprintf("waited longer than %s: %s", in.cfg.MaxWait, reason))
		return
	}
	delivered := uint64(1)
	if metaErr == nil {
		delivered = meta.NumDelivered
	}
	it.nak(waitBackoff(delivered), "waiting")
}

// waitBackoff is how long a waiting event stays away: 200ms after its first delivery,
// doubling up to 30 seconds. A parent is usually just behind its child in the stream,
// so the first retries come quickly; the cap bounds the load of one that waits long.
func waitBackoff(delivered uint64) time.Duration {
	d := 200 * time.Millisecond
	for i := uint64(1); i < delivered && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// retryUnsettled returns every event of a batch that could not be saved.
func (in *Intake) retryUnsettled(b *batch, report []Settled) []Settled {
	for i := range b.items {
		if b.items[i].settled == unsettled {
			b.items[i].nak(time.Second, "failed")
		}
	}
	return reportOf(b, report)
}

// parkItem parks a batch item (see park) and records it as refused.
func (in *Intake) parkItem(ctx context.Context, it *pending, reason string) {
	if in.park(ctx, it.msg, reason) {
		it.settled, it.outcome = terminated, "refused"
		return
	}
	it.settled, it.delay, it.outcome = naked, time.Second, "refused"
}

// park is the one place a message the engine can never apply leaves the intake: it is
// dead-lettered with its reason and terminated, or, when the dead letter cannot be
// published, retried in a second, so it is never dropped. It reports whether the
// message was dead-lettered.
func (in *Intake) park(ctx context.Context, msg jetstream.Msg, reason string) bool {
	if in.deadLetter(ctx, msg, reason) {
		msg.Term()
		return true
	}
	if in.pastRetryBudget(msg) {
		// The dead-letter stream has refused it for longer than any outage should
		// last: stop redelivering. The event stays in the inbound stream for its max
		// age, and the log says where.
		meta, _ := msg.Metadata()
		in.log.Error().Str("subject", msg.Subject()).Interface("stream_sequence", seqOf(meta)).Str("reason", reason).
			Msg("dead letter could not be published within the retry budget; event terminated, still in the inbound stream")
		_ = msg.TermWithReason("retry budget exhausted")
		return true
	}
	msg.NakWithDelay(time.Second)
	return false
}

// pastRetryBudget says a message has been retried for longer than MaxWait since it was
// stored: every retry loop ends.
func (in *Intake) pastRetryBudget(msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	return err == nil && in.cfg.Clock().Sub(meta.Timestamp) > in.cfg.MaxWait
}

func seqOf(meta *jetstream.MsgMetadata) uint64 {
	if meta == nil {
		return 0
	}
	return meta.Sequence.Stream
}

// retry returns an event that failed for a reason that may pass (Redis unreachable,
// a decision error), until the retry budget is spent: then it is parked with the reason.
func (in *Intake) retry(ctx context.Context, it *pending, reason string) {
	if in.pastRetryBudget(it.msg) {
		in.parkItem(ctx, it, fmt.Sprintf("retried longer than %s: %s", in.cfg.MaxWait, reason))
		return
	}
	it.nak(time.Second, "failed")
}

// deadLetter republishes a refused event with its reason, and reports whether it did.
func (in *Intake) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) bool {
	out := nats.NewMsg(events.DeadLetterSubject(msg.Subject()))
	out.Data = msg.Data()
	if len(out.Data) > maxDeadLetterBody {
		// The headers come on top of the event, and NATS takes 1 MiB in all: a refused
		// event near that size could never be parked, and would be retried for the
		// stream's 7 days. Keep its start, its size and its digest.
		sum := sha256.Sum256(out.Data)
		out.Header.Set(events.HeaderTruncated, fmt.Sprintf("size=%d sha256=%s", len(out.Data), hex.EncodeToString(sum[:])))
		out.Data = out.Data[:maxDeadLetterBody]
	}
	reason = truncateReason(reason)
	out.Header.Set(events.HeaderReason, reason)
	out.Header.Set(events.HeaderOriginalSubject, msg.Subject())
	// In the trace of the event it parks, as its publisher sent it.
	tracing.CopyHeaders(out.Header, msg.Headers())
	if meta, err := msg.Metadata(); err == nil {
		// One dead letter per stored event, however often it is redelivered.
		out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream))
	}
	pubCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := in.js.PublishMsg(pubCtx, out); err != nil {
		in.log.Error().Err(err).Str("subject", msg.Subject()).Msg("publish dead letter; will retry the event")
		return false
	}
	in.log.Warn().Str("subject", msg.Subject()).Str("reason", reason).Msg("event refused and dead-lettered")
	return true
}
