package consumers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payinfra/refunds/events"
)

// Metrics are the intake's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	events  *prometheus.CounterVec
	batches prometheus.Histogram
	sizes   prometheus.Histogram
	cases   *prometheus.CounterVec
	overdue *prometheus.CounterVec
	// phases is refunds_intake_phase_seconds_total by phase, resolved once.
	phases  [phaseCount]prometheus.Counter
	workers prometheus.Gauge
}

// phase is a part of a worker's batch, as refunds_intake_phase_seconds_total labels it.
type phase int

const (
	phaseDecode phase = iota // the messages into events, on every core
	phaseLoad                // the batch's accounts and idempotency records, read from Redis
	phaseDecide              // the rules, in Go: each event on the state the batch's earlier ones left
	phaseSave                // the steps' arguments, and Redis running them (its fsync with appendfsync always)
	phaseSettle              // acks, naks and dead letters; the outbound events handed to the relay
	phaseCount
)

var phaseNames = [phaseCount]string{"decode", "load", "decide", "save", "settle"}

// NewMetrics registers the intake's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refunds_intake_events_total",
			Help: "Inbound events by type and outcome (applied, duplicate, conflict, failed, refused, waiting).",
		}, []string{"type", "outcome"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "refunds_intake_batch_seconds",
			Help:    "Time to decide and save one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "refunds_intake_batch_events",
			Help:    "Events per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		cases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refunds_case_status_changes_total",
			Help: "Case status changes saved, by kind and the status entered (a case's current status is its last change).",
		}, []string{"kind", "status"}),
		overdue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refunds_cases_overdue_total",
			Help: "Cases reported overdue (refunds.case.overdue, once per case), by kind and status.",
		}, []string{"kind", "status"}),
	}
	phases := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refunds_intake_phase_seconds_total",
		Help: "Time the intake's workers spent in each phase of their batches: decode, load (reading Redis), decide (the rules), " +
			"save (Redis running the steps), settle (acks, dead letters, the relay's hand-off). " +
			"Their rate over refunds_intake_workers is how busy the workers are, and which phase holds them.",
	}, []string{"phase"})
	for p, name := range phaseNames {
		m.phases[p] = phases.WithLabelValues(name)
	}
	m.workers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "refunds_intake_workers",
		Help: "Intake workers deciding and saving batches at once, each for its share of the accounts.",
	})
	reg.MustRegister(m.events, m.batches, m.sizes, m.cases, m.overdue, phases, m.workers)
	return m
}

func (m *Metrics) setWorkers(n int) {
	if m == nil {
		return
	}
	m.workers.Set(float64(n))
}

// phaseClock times the phases of one batch, one after another.
type phaseClock struct {
	m    *Metrics
	from time.Time
}

// startPhases starts timing a batch; with nil metrics the clock records nothing and
// reads no time.
func (m *Metrics) startPhases() phaseClock {
	if m == nil {
		return phaseClock{}
	}
	return phaseClock{m: m, from: time.Now()}
}

// lap counts the time since the last lap (or the start) as p's.
func (c *phaseClock) lap(p phase) {
	if c.m == nil {
		return
	}
	now := time.Now()
	c.m.phases[p].Add(now.Sub(c.from).Seconds())
	c.from = now
}

// countSaved counts the case events of a saved step.
func (m *Metrics) countSaved(out []events.Event) {
	if m == nil {
		return
	}
	for _, ev := range out {
		switch p := ev.Payload.(type) {
		case *events.CaseStatusChangedData:
			m.cases.WithLabelValues(p.Kind, p.Status).Inc()
		case *events.CaseOverdueData:
			m.overdue.WithLabelValues(p.Kind, p.Status).Inc()
		}
	}
}

func (m *Metrics) count(t events.Type, outcome string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(string(t), outcome).Inc()
}

func (m *Metrics) observeBatch(size int, took time.Duration) {
	if m == nil {
		return
	}
	m.batches.Observe(took.Seconds())
	m.sizes.Observe(float64(size))
}
