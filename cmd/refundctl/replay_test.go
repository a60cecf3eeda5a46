package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/producers"
)

func TestReplayRebuildsAnAccountFromTheStreamAndComparesItWithTheLiveOne(t *testing.T) {
	js := natsWithStreams(t)
	pub := producers.NewPublisher(js)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	publish := func(typ events.Type, id string, offset time.Duration, p events.Payload) {
		ev, err := events.New(typ, "acct-replay", "/billing", id, at.Add(offset), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// The consumption arrives before its account is opened: the rebuild waits for it,
	// as the engine does.
	publish(events.ConsumptionRecorded, "r-c1", 3*time.Minute, &events.ConsumptionRecordedData{ConsumptionID: "c1", Amount: events.MustAmount("20.00")})
	publish(events.AccountOpened, "r-open", 0, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
	publish(events.TopupReceived, "r-t1", time.Minute, &events.TopupReceivedData{TopupID: "t1", Amount: events.MustAmount("100.00"), Currency: "CNY",
		Channel: "alipay", PayerType: "individual", PayerName: "Li Wei"})

	live := `{"status":"active","cash":"80.00","transferred":"0.00","vouchers":"0.00","credit_notes":"0.00","overdue":"0.00","unsettled":"0.00","held":"0.00","withdrawable":"80.00"}`
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(live)) }))
	defer api.Close()
	addr := strings.TrimPrefix(api.URL, "http://")
	t.Setenv("REFUNDS_HTTP_ADDR", addr)

	var out bytes.Buffer
	if err := run([]string{"replay", "acct-replay"}, &out); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "3 events in the inbound stream, 3 applied, 0 still waiting, 0 refused") {
		t.Fatalf("output:\n%s", out.String())
	}

	live = strings.Replace(live, `"cash":"80.00"`, `"cash":"380.00"`, 1)
	out.Reset()
	err := run([]string{"replay", "acct-replay"}, &out)
	if err == nil || !strings.Contains(out.String(), "cash") || !strings.Contains(out.String(), "DIFFERS") {
		t.Fatalf("a live account that differs: err %v\n%s", err, out.String())
	}
}
