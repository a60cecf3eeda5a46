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
}

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
	reg.MustRegister(m.events, m.batches, m.sizes, m.cases, m.overdue)
	return m
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
