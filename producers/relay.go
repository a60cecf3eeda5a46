// Package producers publishes to JetStream: the outbox relay that delivers the engine's
// decisions to notifiers and the payout gateway, and a client upstream systems (and
// refundctl, and tests) use to publish inbound CloudEvents.
package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/state"
)

// OutboundStream holds every event the engine publishes ("refunds.>").
const OutboundStream = "REFUNDS_EVENTS"

// EnsureOutboundStream creates or updates the stream notifiers consume from. Its
// duplicate window is longer than the relay's claim delay, so an event republished
// after a relay crash is dropped by JetStream rather than delivered twice.
func EnsureOutboundStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas <= 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        OutboundStream,
		Description: "Refund engine decisions: case status, review and payout requests, reserve, balances",
		Subjects:    []string{"refunds.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", OutboundStream, err)
	}
	return nil
}

// Outbox is what the relay needs from the store.
type Outbox interface {
	ReadOutbox(ctx context.Context, consumer string, count int) ([]state.OutboxEntry, error)
	ReadOwnPendingOutbox(ctx context.Context, consumer string, count int) ([]state.OutboxEntry, error)
	ClaimStaleOutbox(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]state.OutboxEntry, error)
	AckOutbox(ctx context.Context, entries []state.OutboxEntry) error
	DeleteOutbox(ctx context.Context, entries []state.OutboxEntry) error
	ParkOutbox(ctx context.Context, entries []state.OutboxEntry) error
}

// RelayConfig tunes the relay. Zero values take the defaults stated on each field.
type RelayConfig struct {
	// Consumer names this relay in the outbox consumer group; unique per instance.
	Consumer string
	// BatchSize is the most entries read per partition at once. Default 200: with 16
	// partitions that keeps the publishes in flight under nats.go's default limit of
	// 4,000 pending asynchronous publishes.
	BatchSize int
	// Poll is how often the outbox is checked when nothing wakes the relay. Default
	// 100ms. The intake wakes it after each save, so this bounds only the delay for
	// entries written by another instance whose relay is gone.
	Poll time.Duration
	// ClaimAfter is how long an entry may stay read but unpublished before another
	// relay takes it over. Default 30 seconds.
	ClaimAfter time.Duration
	// Registerer receives the relay's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Tracer records a span for the publish of each outbound event saved with a trace
	// context, a child of that context, and the event is published with the publish
	// span's context. Nil records nothing: the event is published with the trace
	// context it was saved with, as it is.
	Tracer trace.Tracer
}

// Relay publishes outbox entries to JetStream and removes them once JetStream has
// stored them. Each is published with Nats-Msg-Id set to its event id, and with the
// traceparent (and tracestate) of the event that caused it when it was saved with one.
type Relay struct {
	js        jetstream.JetStream
	outbox    Outbox
	log       zerolog.Logger
	cfg       RelayConfig
	wake      chan struct{}
	published prometheus.Counter
	failed    prometheus.Counter
	parked    prometheus.Counter
	// strikes counts, per event id, the refusals of an entry while JetStream was up.
	strikes   map[string]int
	lastClaim time.Time
	// ownPending: entries this relay's consumer took may still be unacknowledged (a
	// publish or an acknowledgement failed, or an earlier process of the same name
	// died holding some), so a pass reads them back before anything new. When it is
	// false the pass skips that read, a round trip of 16 XREADGROUPs.
	ownPending bool
	// handedMu guards what is handed to the relay and when it may publish it.
	handedMu sync.Mutex
	handed   []state.OutboxEntry
	// A handed entry may be published only once the outbox has been read to its end
	// after every moment it may have come to hold entries that were not handed, and
	// so may be older than a handed one of the same account: the relay's start (an
	// earlier process's backlog), a commit whose outcome is not known, a publish
	// that failed, handed entries dropped, the timer runner's saves. readsWanted
	// counts those moments; readsDone is readsWanted as it was when the last read
	// that reached the end began. Handed entries wait while they differ.
	readsWanted, readsDone uint64
	// readUpTo is, by partition, the furthest position a read of new entries
	// returned: a handed entry at or before it was read too, and is not published
	// again from what was handed.
	readUpTo map[int]position
	// holds counts the saves under way whose entries are not handed (HoldHanded):
	// handed entries wait for them, since one may be newer than what they save.
	holds int
	// toDelete are handed entries JetStream stored, to be removed from the outbox
	// (deleteHandedLater), since toDeleteSince; deleting is such a removal under way.
	toDelete      []state.OutboxEntry
	toDeleteSince time.Time
	deleting      sync.WaitGroup
}

// maxHanded bounds the entries waiting to be published from memory: past it they
// are dropped and read back from the outbox, which holds them anyway.
const maxHanded = 20_000

// NewRelay returns a relay from outbox to js.
func NewRelay(js jetstream.JetStream, outbox Outbox, log zerolog.Logger, cfg RelayConfig) (*Relay, error) {
	if cfg.Consumer == "" {
		return nil, errors.New("relay: a consumer name is required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = 30 * time.Second
	}
	r := &Relay{
		js: js, outbox: outbox, log: log, cfg: cfg,
		wake: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refunds_relay_published_total", Help: "Outbound events stored by JetStream.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refunds_relay_publish_failures_total", Help: "Outbound publishes that failed and will be retried.",
		}),
		parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refunds_relay_parked_total", Help: "Outbound events JetStream refused too often, parked for an operator.",
		}),
		strikes:     make(map[string]int),
		ownPending:  true, // an earlier process under this name may have left some
		readsWanted: 1,    // an earlier process may have left a backlog: read it first
		readUpTo:    make(map[int]position),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.published, r.failed, r.parked)
	}
	return r, nil
}

// Hand gives the relay entries this process has just saved (state.StepResult.Saved),
// so it publishes and removes them without reading the outbox for them: a round trip
// of 16 reads less per pass, and an outbound event out sooner. It never blocks. The
// entries are in the outbox all the same, so one the relay does not get to (a crash,
// a failed publish, too many waiting) is read from there as any other, and one
// published twice (read by another instance's relay meanwhile) is dropped by
// JetStream as a duplicate: its id is its Nats-Msg-Id.
//
// The caller hands an account's entries in the order it saved them, and tells the
// relay (SavedUnhanded, HoldHanded) when it may have saved some it does not hand.
func (r *Relay) Hand(entries []state.OutboxEntry) {
	if len(entries) == 0 {
		return
	}
	r.handedMu.Lock()
	if len(r.handed)+len(entries) > maxHanded {
		r.handed = nil
		r.readsWanted++
	} else {
		r.handed = append(r.handed, entries...)
	}
	r.handedMu.Unlock()
	r.poke()
}

// SavedUnhanded tells the relay that the outbox may hold entries this process saved
// and will not hand (a commit whose outcome is not known, a step Redis failed part
// way): nothing handed after this call is published before a read of the outbox to
// its end, so nothing newer overtakes them. Call it before saving anything else.
func (r *Relay) SavedUnhanded() {
	r.handedMu.Lock()
	r.readsWanted++
	r.handedMu.Unlock()
	r.poke()
}

// HoldHanded is called before a save whose entries are not handed, by a part of the
// process that saves for the same accounts as the one that hands (the timer runner
// beside the intake): until ReleaseHanded, nothing handed is published, since it
// may be newer than what that save writes.
func (r *Relay) HoldHanded() {
	r.handedMu.Lock()
	r.holds++
	r.handedMu.Unlock()
}

// ReleaseHanded ends a HoldHanded once its save has returned. With saved (the save
// may have written outbound events), what was handed meanwhile waits for a read of
// the outbox to its end.
func (r *Relay) ReleaseHanded(saved bool) {
	r.handedMu.Lock()
	r.holds--
	if saved {
		r.readsWanted++
	}
	r.handedMu.Unlock()
	r.poke()
}

func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is cancelled, then publishes what is already in the outbox
// (for at most drainTimeout) and returns. It reads the outbox at start and on every
// poll; in between it publishes what is handed to it.
func (r *Relay) Run(ctx context.Context, drainTimeout time.Duration) error {
	ticker := time.NewTicker(r.cfg.Poll)
	defer ticker.Stop()
	work := context.WithoutCancel(ctx)
	// flush ends the wait of what deleteHandedLater holds when nothing else comes.
	flush := time.NewTimer(time.Hour)
	defer flush.Stop()
	read := true
	for {
		r.passes(ctx, work, read)
		flush.Stop()
		if len(r.toDelete) > 0 {
			flush.Reset(deleteAfter - time.Since(r.toDeleteSince))
		}
		select {
		case <-flush.C:
			r.deletePublished(work)
			read = false
		case <-ctx.Done():
			drainCtx, cancel := context.WithTimeout(work, drainTimeout)
			defer cancel()
			// The pass reads the whole outbox, which holds what was handed too.
			r.handedMu.Lock()
			r.handed = nil
			r.handedMu.Unlock()
			r.passes(drainCtx, drainCtx, true)
			r.deletePublishedNow(drainCtx)
			return nil
		case <-r.wake:
			read = false
		case <-ticker.C:
			read = true
		}
	}
}

// passes relays while there is work, until stop is done or a publish fails (then the
// caller waits for its next poll rather than spin while NATS is away). Each pass
// publishes this relay's own failed entries first, then new ones, so that within a
// partition nothing newer overtakes an older entry; a partition with an entry that
// could not be stored is left alone for the rest of the pass, the others go on.
//
// A pass whose read left no partition's entries behind (each gave fewer than
// BatchSize) is the last: anything saved after that read woke the relay again, so
// reading once more only to find nothing would be a round trip for no entry.
//
// Without read, a pass reads the outbox only when it must (ownPending, readsWanted),
// then publishes what was handed to it: after the reads, so what they found goes
// before what was saved since.
func (r *Relay) passes(stop, work context.Context, read bool) {
	for stop.Err() == nil {
		// Entries of other relays that died are claimed on a timer, busy or not.
		if time.Since(r.lastClaim) >= r.cfg.ClaimAfter/2 {
			r.lastClaim = time.Now()
			claimBlocked := map[int]bool{}
			r.relay(work, r.claimStale, r.outbox.AckOutbox, claimBlocked, nil)
			if len(claimBlocked) > 0 {
				r.ownPending = true // claimed, so this relay's now, and not yet stored
			}
		}
		blocked := map[int]bool{}
		var taken, more int
		r.handedMu.Lock()
		wanted := r.readsWanted
		mustRead := wanted != r.readsDone
		r.handedMu.Unlock()
		if read || r.ownPending || mustRead {
			// Not to read what is published but not removed yet: it would go out twice.
			r.deletePublishedNow(work)
			if r.ownPending {
				n, full := r.relay(work, r.readOwnPending, r.outbox.AckOutbox, blocked, nil)
				if n == 0 && len(blocked) == 0 {
					r.ownPending = false
				}
				taken, more = taken+n, more+full
			}
			n, full := r.relay(work, r.readNew, r.outbox.AckOutbox, blocked, nil)
			taken, more = taken+n, more+full
			if len(blocked) == 0 && more == 0 {
				// Read to the end: what was saved before the read began is published,
				// so what is handed may follow it.
				r.handedMu.Lock()
				r.readsDone = max(r.readsDone, wanted)
				r.handedMu.Unlock()
			}
		}
		// Handed entries were never read into the consumer group: deleting them is
		// enough. One a read took meanwhile is acknowledged by that read's pass.
		r.relay(work, r.takeHanded, r.deleteHandedLater, blocked, r.joinHanded)
		if len(blocked) > 0 {
			// What was not stored is in the outbox, older than what comes next.
			r.ownPending = true
			r.handedMu.Lock()
			r.readsWanted++
			r.handedMu.Unlock()
			return
		}
		// On while a read gave some partition a full batch (it may hold more), or
		// more was handed than one pass publishes.
		read = taken > 0 && more > 0
		if !read && !r.handedWaiting() {
			return
		}
	}
}

// deleteHandedLater removes handed entries JetStream stored from the outbox later,
// many passes' at once and while the relay goes on. A removal is a Redis write per
// partition (with fsync always, one more disk sync the intake's saves queue behind),
// and removing after every pass cost about one per outbound event while events
// trickle in. Entries wait at most deleteAfter, or until the outbox is read, which
// would find them (they were never read into the consumer group) and publish them
// again; a removal that fails leaves them there for that read, and JetStream drops
// the second publish as a duplicate by its id. A crash before the removal does the
// same.
func (r *Relay) deleteHandedLater(ctx context.Context, entries []state.OutboxEntry) error {
	if len(r.toDelete) == 0 {
		r.toDeleteSince = time.Now()
	}
	r.toDelete = append(r.toDelete, entries...)
	if len(r.toDelete) >= deleteAtOnce || time.Since(r.toDeleteSince) >= deleteAfter {
		r.deletePublished(ctx)
	}
	return nil
}

// deletePublished starts removing what deleteHandedLater holds, once the removal
// under way has returned.
func (r *Relay) deletePublished(ctx context.Context) {
	r.deleting.Wait()
	entries := r.toDelete
	r.toDelete = nil
	if len(entries) == 0 {
		return
	}
	r.deleting.Go(func() {
		if err := r.outbox.DeleteOutbox(ctx, entries); err != nil {
			r.log.Error().Err(err).Int("entries", len(entries)).Msg("remove published outbound events from the outbox; the next read publishes them again")
		}
	})
}

// deletePublishedNow removes what deleteHandedLater holds and returns once it is
// removed (or the removal failed).
func (r *Relay) deletePublishedNow(ctx context.Context) {
	r.deletePublished(ctx)
	r.deleting.Wait()
}

// deleteAtOnce and deleteAfter bound what deleteHandedLater holds: published entries
// stay in Redis's memory until removed (a read of the outbox, every poll, removes
// them too).
const (
	deleteAtOnce = 2_000
	deleteAfter  = 50 * time.Millisecond
)

// handedPerPass is the most handed entries one pass publishes: under nats.go's
// default limit of 4,000 asynchronous publishes in flight.
const handedPerPass = 3_200

// joinFor is how long a pass takes in what is handed while it waits for acks: past it
// the pass ends once its acks are in, so its removals and the reads it may owe are
// not put off while handed entries keep coming.
const joinFor = 250 * time.Millisecond

// handedWaiting says handed entries wait that may be published now.
func (r *Relay) handedWaiting() bool {
	r.handedMu.Lock()
	defer r.handedMu.Unlock()
	return len(r.handed) > 0 && r.mayPublishHanded()
}

func (r *Relay) mayPublishHanded() bool { return r.holds == 0 && r.readsWanted == r.readsDone }

// takeHanded takes what was handed to the relay, up to handedPerPass, when it may be
// published (mayPublishHanded); otherwise it stays for a later pass.
func (r *Relay) takeHanded(context.Context) ([]state.OutboxEntry, error) {
	return r.joinHanded(handedPerPass), nil
}

// joinHanded takes what was handed to the relay, at most limit entries, when it may
// be published: for a pass's first take (takeHanded), and for what joins a pass
// while it waits for JetStream's acks.
func (r *Relay) joinHanded(limit int) []state.OutboxEntry {
	r.handedMu.Lock()
	defer r.handedMu.Unlock()
	if !r.mayPublishHanded() || limit <= 0 {
		return nil
	}
	take := r.handed[:min(len(r.handed), limit)]
	r.handed = r.handed[len(take):]
	if len(r.handed) == 0 {
		r.handed = nil
	}
	// An entry at or before where a read of its partition reached was read by this
	// relay or another (or published and deleted already): it is theirs to publish.
	kept := take[:0:0]
	for _, e := range take {
		if at, ok := parsePosition(e.Position); !ok || r.readUpTo[e.Partition].before(at) {
			kept = append(kept, e)
		}
	}
	return kept
}

func (r *Relay) readOwnPending(ctx context.Context) ([]state.OutboxEntry, error) {
	return r.outbox.ReadOwnPendingOutbox(ctx, r.cfg.Consumer, r.cfg.BatchSize)
}

// readNew reads entries no relay has read, and notes how far it read each partition.
func (r *Relay) readNew(ctx context.Context) ([]state.OutboxEntry, error) {
	entries, err := r.outbox.ReadOutbox(ctx, r.cfg.Consumer, r.cfg.BatchSize)
	for _, e := range entries {
		if at, ok := parsePosition(e.Position); ok && r.readUpTo[e.Partition].before(at) {
			r.readUpTo[e.Partition] = at
		}
	}
	return entries, err
}

// position is a stream entry's id, "<ms>-<seq>": entries of a partition are saved in
// the order of their positions.
type position struct{ ms, seq uint64 }

func parsePosition(id string) (position, bool) {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return position{}, false
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	return position{m, n}, err1 == nil && err2 == nil
}

func (p position) before(q position) bool { return p.ms < q.ms || p.ms == q.ms && p.seq < q.seq }

func (r *Relay) claimStale(ctx context.Context) ([]state.OutboxEntry, error) {
	return r.outbox.ClaimStaleOutbox(ctx, r.cfg.Consumer, r.cfg.ClaimAfter, r.cfg.BatchSize)
}

// relay takes one set of entries, publishes those of partitions not blocked, and
// acknowledges the ones stored; partitions where an entry was not stored are added to
// blocked. It returns how many entries it took, and how many partitions gave a full
// BatchSize (and may hold more). With join, entries that come while the set waits for
// JetStream's acks join it (see publish).
func (r *Relay) relay(ctx context.Context, take func(context.Context) ([]state.OutboxEntry, error), ack func(context.Context, []state.OutboxEntry) error, blocked map[int]bool, join func(limit int) []state.OutboxEntry) (taken, full int) {
	entries, err := take(ctx)
	if err != nil {
		r.log.Error().Err(err).Msg("read outbox")
		blocked[allPartitions] = true // nothing is known: stop the pass
		return 0, 0
	}
	if len(entries) == 0 {
		return 0, 0
	}
	perPartition := make(map[int]int)
	for _, e := range entries {
		if perPartition[e.Partition]++; perPartition[e.Partition] == r.cfg.BatchSize {
			full++
		}
	}
	entries, done, poison := r.publish(ctx, entries, blocked, join)
	if len(poison) > 0 {
		if err := r.outbox.ParkOutbox(ctx, poison); err != nil {
			r.log.Error().Err(err).Msg("park outbound events JetStream keeps refusing")
			r.ownPending = true // still pending: taken again next pass
		} else {
			r.parked.Add(float64(len(poison)))
			for _, e := range poison {
				r.log.Error().Str("event_id", e.ID).Str("subject", e.Subject).Int("partition", e.Partition).
					Msg("outbound event refused by JetStream too often; parked in the outbox's parked stream for an operator")
			}
		}
	}
	if err := ack(ctx, done); err != nil {
		// They stay pending and go again; JetStream drops the republish as a duplicate
		// within its window.
		r.log.Error().Err(err).Int("entries", len(done)).Msg("acknowledge outbox entries")
		blocked[allPartitions] = true
	}
	return len(entries), full
}

// maxStrikes is how many times an entry may be refused while JetStream is evidently
// up before it is parked.
const maxStrikes = 5

// allPartitions in a blocked set stops the whole pass.
const allPartitions = -1

// publish sends the entries of unblocked partitions asynchronously and waits for
// JetStream's acks. It returns the entries that may be acknowledged (in each
// partition, those stored up to the first that was not) and those to park (refused
// maxStrikes times while JetStream was up: too large, or a subject no stream takes).
// One connection publishes in outbox order, so a single relay keeps each partition's
// order in the stream as long as JetStream stores what it is sent; after a failure the
// rest of that partition goes again, in order. Several relays sharing the outbox do
// not order between them.
//
// With join, what is handed while the set waits for its acks is sent at once and
// joins the set, rather than waiting for the next pass: a round trip to JetStream
// less for an outbound event handed during one. It goes after what the set sent, on
// the same connection. Joining stops after joinFor, at handedPerPass entries in all,
// and as soon as a publish of the set fails: what is handed after a failure waits
// for the read of the outbox that the failure calls for, and goes after the failed
// entry. A publish that fails after a later entry of its partition was sent (in the
// set as taken, or joined before the failure was known) lets that entry be stored
// first, as within any one set; joining widens that window by at most joinFor. It
// returns every entry sent or passed over, in the order it was taken.
func (r *Relay) publish(ctx context.Context, entries []state.OutboxEntry, blocked map[int]bool, join func(limit int) []state.OutboxEntry) (taken, done, poison []state.OutboxEntry) {
	taken = make([]state.OutboxEntry, 0, len(entries))
	futures := make([]jetstream.PubAckFuture, 0, len(entries))
	errs := make([]error, 0, len(entries))
	var spans []trace.Span
	if r.cfg.Tracer != nil {
		defer func() {
			for i, span := range spans {
				if span == nil {
					continue
				}
				if errs[i] != nil {
					span.SetStatus(codes.Error, errs[i].Error())
				}
				span.End()
			}
		}()
	}
	// joining: what is handed may still join the set. It stops at joinFor, at
	// handedPerPass entries, and at the first publish that fails.
	joining := join != nil
	send := func(entries []state.OutboxEntry) {
		for _, e := range entries {
			var (
				future jetstream.PubAckFuture
				err    error
				span   trace.Span
			)
			if !blocked[e.Partition] && !blocked[allPartitions] && e.Subject != "" {
				msg := nats.NewMsg(e.Subject)
				msg.Data = e.Body
				msg.Header.Set(nats.MsgIdHdr, e.ID)
				msg.Header.Set("Content-Type", "application/cloudevents+json")
				if r.cfg.Tracer != nil && e.TraceParent != "" {
					span = r.startPublishSpan(ctx, e, msg.Header)
				} else {
					tracing.SetHeaders(msg.Header, e.TraceParent, e.TraceState)
				}
				if future, err = r.js.PublishMsgAsync(msg); err != nil {
					joining = false
				}
			}
			taken, futures, errs = append(taken, e), append(futures, future), append(errs, err)
			if r.cfg.Tracer != nil {
				spans = append(spans, span)
			}
		}
	}
	send(entries)
	// One deadline for the whole set: once it passes, every wait below ends at once.
	// What joins has at least its time less joinFor for its ack.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var joinEnds <-chan time.Time // nil: never ready, when nothing may join
	if joining {
		t := time.NewTimer(joinFor)
		defer t.Stop()
		joinEnds = t.C
	}
	stored := make([]bool, 0, len(futures))
	anyStored, woken := false, false
	for i := 0; i < len(futures); i++ {
		stored = append(stored, false)
		f := futures[i]
		if f == nil {
			continue
		}
	wait:
		for {
			var handed chan struct{} // nil: not joining, never ready
			if joining && len(taken) < handedPerPass {
				handed = r.wake
			}
			select {
			case <-f.Ok():
				stored[i], anyStored = true, true
				break wait
			case err := <-f.Err():
				errs[i], joining = err, false
				break wait
			case <-waitCtx.Done():
				errs[i], joining = fmt.Errorf("no ack from JetStream: %w", waitCtx.Err()), false
				break wait
			case <-joinEnds:
				joining = false
			case <-handed:
				woken = true
				send(join(handedPerPass - len(taken)))
			}
		}
	}
	if woken {
		// The wake may have been for something other than handed entries (a read
		// wanted, a hold released): the relay's loop must see it too.
		r.poke()
	}
	var firstErr error
	failed := 0
	jetStreamUp := anyStored // evidently up if it stored something; asked below otherwise
	asked := false
	for i, e := range taken {
		p := e.Partition
		switch {
		case e.Subject == "":
			// Its body is gone: it was published and deleted, only the ack was lost.
			done = append(done, e)
		case blocked[p] || blocked[allPartitions]:
			// Not sent, or sent after an older entry of its partition that failed: left in
			// the outbox, the read the failure calls for publishes it after that entry.
		case stored[i]:
			delete(r.strikes, e.ID)
			done = append(done, e)
		default:
			failed++
			firstErr = cmp.Or(firstErr, errs[i])
			blocked[p] = true
			var apiErr *jetstream.APIError
			if !jetStreamUp && !asked && !errors.As(errs[i], &apiErr) {
				asked, jetStreamUp = true, r.jetStreamAnswers(ctx)
			}
			// Only refusals while JetStream is up count: an outage must not park
			// healthy events.
			if jetStreamUp || errors.As(errs[i], &apiErr) {
				if r.strikes[e.ID]++; r.strikes[e.ID] >= maxStrikes {
					delete(r.strikes, e.ID)
					poison = append(poison, e)
					// The partition may go on past the parked entry on the next pass.
				}
			}
		}
	}
	r.published.Add(float64(len(done)))
	if failed > 0 {
		r.failed.Add(float64(failed))
		r.log.Warn().Err(firstErr).Int("not_stored", failed).Int("stored", len(done)).Msg("outbound events not stored; will retry in order")
	}
	return taken, done, poison
}

// startPublishSpan starts the span of an entry's publish, a child of the trace
// context the entry was saved with, and writes the span's context into h. An entry
// whose saved context does not parse is published with it as it is, without a span.
func (r *Relay) startPublishSpan(ctx context.Context, e state.OutboxEntry, h nats.Header) trace.Span {
	parent := tracing.Parse(e.TraceParent, e.TraceState)
	if !parent.IsValid() {
		tracing.SetHeaders(h, e.TraceParent, e.TraceState)
		return nil
	}
	// The event type is the subject but its last token, the account.
	typ := e.Subject
	if i := strings.LastIndexByte(typ, '.'); i > 0 {
		typ = typ[:i]
	}
	spanCtx, span := r.cfg.Tracer.Start(trace.ContextWithRemoteSpanContext(ctx, parent), "send "+typ,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", e.Subject),
			attribute.String("cloudevents.event_id", e.ID),
			attribute.String("cloudevents.event_type", typ),
		))
	tracing.Inject(spanCtx, h)
	return span
}

// jetStreamAnswers reports whether JetStream answers at all, to tell an entry it
// refuses from an outage.
func (r *Relay) jetStreamAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := r.js.AccountInfo(ctx)
	return err == nil
}
