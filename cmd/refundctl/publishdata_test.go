package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/payinfra/refunds/events"
)

// refundctl publish -data checks the data as the engine decodes it, before it connects:
// data the engine would refuse is never sent, and encoding/json's leniencies (a key
// matched ignoring case, the last of two keys winning) never turn it into another event.
func TestPublishRefusesDataTheEngineWouldRefuseBeforeSendingIt(t *testing.T) {
	t.Setenv("REFUNDS_NATS_URL", "nats://127.0.0.1:1") // nothing listens: a send would fail otherwise
	for _, tc := range []struct{ name, data, field string }{
		{"a key differing from a field only in case", `{"consumption_id":"c1","amount":"1.00","AMOUNT":"300.00"}`, "data.AMOUNT"},
		{"a key given twice", `{"consumption_id":"c1","amount":"1.00","amount":"300.00"}`, "data.amount"},
		{"a required field missing", `{"amount":"1.00"}`, "data.consumption_id"},
		{"an amount as a JSON number", `{"consumption_id":"c1","amount":12.5}`, "data.amount"},
		{"a negative amount", `{"consumption_id":"c1","amount":"-12.50"}`, "data.amount"},
		{"not an object", `["c1"]`, "data"},
		{"not JSON", `{"consumption_id":`, "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run([]string{"publish", "-type", "billing.consumption.recorded", "-account", "acct-42", "-data", tc.data}, &out)
			var invalid *events.InvalidError
			if !errors.As(err, &invalid) || invalid.Field != tc.field {
				t.Fatalf("publish -data %s: %v, want an invalid %s", tc.data, err, tc.field)
			}
			if strings.Contains(out.String(), "published") {
				t.Fatalf("published: %s", out.String())
			}
		})
	}
}
