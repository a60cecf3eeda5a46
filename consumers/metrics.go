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
	}
	reg.MustRegister(m.events, m.batches, m.sizes)
	return m
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
