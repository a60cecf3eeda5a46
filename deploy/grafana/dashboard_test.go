// Package grafana holds the Grafana dashboard of the refund engine's metrics.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// The metrics refundd exports (README, Metrics): a panel on anything else shows nothing.
var exported = map[string]bool{
	"refunds_intake_events_total": true, "refunds_intake_batch_seconds_bucket": true, "refunds_intake_consumer_pending": true,
	"refunds_outbox_depth": true, "refunds_outbox_oldest_age_seconds": true, "refunds_timers_pending": true, "refunds_timers_pending_by_kind": true, "refunds_cases": true,
	"refunds_case_status_changes_total": true, "refunds_cases_overdue_total": true,
	"refunds_relay_publish_failures_total": true, "refunds_relay_parked_total": true,
	"refunds_intake_phase_seconds_total": true, "refunds_intake_workers": true,
}

func TestEveryPanelQueriesAMetricRefunddExports(t *testing.T) {
	b, err := os.ReadFile("refunds-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`refunds_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			names := metric.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q queries no refunds metric: %s", p.Title, target.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q queries %s, which refundd does not export", p.Title, n)
				}
			}
		}
	}
}
