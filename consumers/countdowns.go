package consumers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/state"
)

// CountdownStore is what the countdown runner needs from persistence.
type CountdownStore interface {
	Store
	ClaimDueTimers(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error)
}

// CountdownConfig tunes the runner. Zero values take the defaults stated on each field.
// RelayHold is what the timer runner tells the outbox relay of its process around a
// save (see CountdownConfig.Relay).
type RelayHold interface {
	HoldHanded()
	// ReleaseHanded ends the hold; saved: the save may have written outbound events.
	ReleaseHanded(saved bool)
}

// anyOutboundSaved says a save may have written outbound events: a step applied or
// failed part way with some.
func anyOutboundSaved(steps []state.Step, results []state.StepResult) bool {
	for i, r := range results {
		if (r.Outcome == state.Applied || r.Outcome == state.Failed) && len(steps[i].Outbound) > 0 {
			return true
		}
	}
	return false
}

type CountdownConfig struct {
	// Poll is how often due deadlines are claimed. Default 100ms: a reserve is
	// released at most about this long after its deadline.
	Poll time.Duration
	// Lease is how long a claimed deadline belongs to this instance before another may
	// claim it (this one died between claiming and firing). Default 10 seconds.
	Lease time.Duration
	// BatchSize is the most deadlines claimed per partition per poll. Default 500.
	BatchSize int
	// Rules are the business rules. Default state.DefaultRules().
	Rules *state.Rules
	// Clock is "now" for claims and decisions. Default time.Now.
	Clock func() time.Time
	// Relay is this process's outbox relay (producers.Relay). The runner saves for
	// the same accounts as the intake, on its own goroutine, so it does not hand what
	// it saves: it holds back what the intake hands while it saves, and the relay
	// reads the firings' events from the outbox before publishing anything handed
	// after them. Nil: nothing held.
	Relay RelayHold
	// Registerer receives the runner's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Metrics counts the case events timers save (overdue reports, settlement ends);
	// nil counts nothing.
	Metrics *Metrics
	// Tracer records a span per account whose timers fire. A timer has no inbound
	// event to continue the trace of: each firing starts a new trace, and the events
	// it publishes (reserve unfrozen, case overdue) carry it. Nil records nothing, and
	// those events carry no trace context.
	Tracer trace.Tracer
}

// Countdowns fires the timers whose deadline has come, of every kind (the reserve
// countdown, and any other state.TimerKind). Every instance runs one; an account's
// next deadline is claimed by one instance at a time, and firing it is an atomic step
// checked against the account's state (state.FireDue), so a stale timer does nothing
// and two instances can never both fire the same one.
type Countdowns struct {
	store     CountdownStore
	log       zerolog.Logger
	cfg       CountdownConfig
	rules     state.Rules
	fireDelay prometheus.Histogram
}

// NewCountdowns returns a runner on store.
func NewCountdowns(store CountdownStore, log zerolog.Logger, cfg CountdownConfig) *Countdowns {
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	rules := state.DefaultRules()
	if cfg.Rules != nil {
		rules = *cfg.Rules
	}
	c := &Countdowns{store: store, log: log, cfg: cfg, rules: rules,
		fireDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "refunds_reserve_fire_delay_seconds",
			Help:    "Time from a reserve countdown's deadline to the reserve's release being saved.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.fireDelay)
	}
	return c
}

// Run fires due countdowns until ctx is cancelled.
func (c *Countdowns) Run(ctx context.Context) error {
	ticker := time.NewTicker(c.cfg.Poll)
	defer ticker.Stop()
	for {
		// Keep going while a poll fills its batch: there may be more due. A stop ends
		// it between batches; what is left is due for the next instance to run.
		for ctx.Err() == nil && c.FireDue(context.WithoutCancel(ctx)) >= c.cfg.BatchSize {
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// FireDue claims what is due now and fires it; it returns how many it claimed.
func (c *Countdowns) FireDue(ctx context.Context) int {
	now := c.cfg.Clock()
	accounts, err := c.store.ClaimDueTimers(ctx, now, c.cfg.Lease, c.cfg.BatchSize)
	if err != nil {
		c.log.Error().Err(err).Msg("claim due reserve countdowns")
		return 0
	}
	// A conflict means an event changed the account since it was loaded: decide again
	// on fresh state at once. What still conflicts after that is claimed again when
	// its lease runs out.
	pending := accounts
	for attempt := 0; attempt < 3 && len(pending) > 0; attempt++ {
		pending = c.fire(ctx, pending, now)
	}
	return len(accounts)
}

// fire decides and saves the deadlines of accounts; it returns those that conflicted.
func (c *Countdowns) fire(ctx context.Context, accounts []string, now time.Time) []string {
	loaded, _, err := c.store.Load(ctx, accounts, nil)
	if err != nil {
		c.log.Error().Err(err).Int("accounts", len(accounts)).Msg("load accounts of due countdowns; their claims expire and are retried")
		return nil
	}
	steps := make([]state.Step, 0, len(accounts))
	deadlines := make([]*time.Time, 0, len(accounts))
	var spans []trace.Span
	defer func() {
		for _, span := range spans {
			span.End()
		}
	}()
	for _, id := range accounts {
		current := loaded[id]
		if current.Err != nil {
			c.log.Error().Err(current.Err).Str("account_id", id).Msg("read account of a due deadline; its claim expires and is retried")
			continue
		}
		decision, err := state.FireDue(current.Account, c.rules, now)
		if err != nil {
			c.log.Error().Err(err).Str("account_id", id).Msg("decide due timers; the claim expires and is retried")
			continue
		}
		step := decision.Step(state.EventRef{AccountID: id}, current.Version)
		// The claim took the deadline out of the pending set: put back whatever
		// deadline the account has now (none once every timer has fired).
		step.SetNextDeadline, step.Fired = true, true
		if c.cfg.Tracer != nil && len(step.Outbound) > 0 {
			_, span := c.cfg.Tracer.Start(ctx, "refunds.timers.fire", trace.WithNewRoot(),
				trace.WithAttributes(attribute.String("refunds.account_id", id), attribute.Int("refunds.outbound", len(step.Outbound))))
			spans = append(spans, span)
			step.TraceParent, step.TraceState = tracing.Format(span.SpanContext())
		}
		steps = append(steps, step)
		deadlines = append(deadlines, current.Account.NextDeadline(c.rules))
	}
	if c.cfg.Relay != nil {
		c.cfg.Relay.HoldHanded()
	}
	results, err := c.store.Commit(ctx, steps)
	if c.cfg.Relay != nil {
		c.cfg.Relay.ReleaseHanded(err != nil || anyOutboundSaved(steps, results))
	}
	if err != nil {
		c.log.Error().Err(err).Int("steps", len(steps)).Msg("save fired timers; their claims expire and are retried")
		return nil
	}
	var conflicted []string
	saved := c.cfg.Clock()
	for i, r := range results {
		switch {
		case r.Outcome == state.Conflict:
			conflicted = append(conflicted, steps[i].Event.AccountID)
		case r.Outcome == state.Failed:
			c.log.Error().Str("account_id", steps[i].Event.AccountID).Str("reason", r.Reason).Msg("save fired timers refused by the store; the claim expires and is retried")
		case r.Outcome == state.Applied && steps[i].Account != nil:
			c.cfg.Metrics.countSaved(steps[i].Outbound)
			if deadlines[i] != nil {
				c.fireDelay.Observe(saved.Sub(*deadlines[i]).Seconds())
				c.log.Info().Str("account_id", steps[i].Event.AccountID).Time("deadline", *deadlines[i]).Msg("timers fired")
			}
		}
	}
	return conflicted
}
