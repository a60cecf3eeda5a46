package events

import (
	"encoding/json"
	"testing"
)

// benchEvent is a top-up as billing publishes it, the largest of the common events.
var benchEvent = []byte(`{"specversion":"1.0","id":"evt-7f3a9c21","source":"/billing","type":"billing.topup.received","subject":"acct-000042","time":"2026-11-23T08:00:00Z","datacontenttype":"application/json","data":{"topup_id":"t1","amount":"500.00","currency":"CNY","channel":"online_banking","banking":"personal","bank":"CMB","payer_type":"individual","payer_name":"Li Wei"}}`)

// BenchmarkDecode is Decode of one event, and of its envelope alone. Run:
// go test -run '^$' -bench Decode -benchmem ./events/
func BenchmarkDecode(b *testing.B) {
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(benchEvent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wireEnvelope
			if err := json.Unmarshal(benchEvent, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, _ := scanEnvelope(benchEvent); !ok {
				b.Fatal("not scanned")
			}
		}
	})
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid(benchEvent) {
				b.Fatal("invalid")
			}
		}
	})
}

// BenchmarkDigests is the digests of one decoded top-up. Run:
// go test -run '^$' -bench Digests -benchmem ./events/
func BenchmarkDigests(b *testing.B) {
	ev, err := Decode(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ev.Digests()
	}
}
