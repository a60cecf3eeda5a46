package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
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

func TestReplayAllAuditsEveryAccountWithProgressAndWritesScratchKeys(t *testing.T) {
	js := natsWithStreams(t)
	pub := producers.NewPublisher(js)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, acct := range []string{"acct-good", "acct-drifted"} {
		for i, ev := range []struct {
			typ events.Type
			p   events.Payload
		}{
			{events.AccountOpened, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true}},
			{events.TopupReceived, &events.TopupReceivedData{TopupID: "t1", Amount: events.MustAmount("100.00"), Currency: "CNY",
				Channel: "alipay", PayerType: "individual", PayerName: "Li Wei"}},
		} {
			e, err := events.New(ev.typ, acct, "/billing", fmt.Sprintf("%s-%d", acct, i), at.Add(time.Duration(i)*time.Minute), ev.p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pub.Publish(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The live engine agrees about acct-good; acct-drifted shows money it should not have.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/cases") {
			_, _ = w.Write([]byte(`{"cases":[]}`))
			return
		}
		cash := "100.00"
		if strings.Contains(r.URL.Path, "acct-drifted") {
			cash = "150.00"
		}
		fmt.Fprintf(w, `{"status":"active","cash":%q,"transferred":"0.00","vouchers":"0.00","credit_notes":"0.00","overdue":"0.00","unsettled":"0.00","held":"0.00","withdrawable":%q}`, cash, cash)
	}))
	defer api.Close()
	t.Setenv("REFUNDS_HTTP_ADDR", strings.TrimPrefix(api.URL, "http://"))
	redisServer := testenv.StartRedis(t)

	var out bytes.Buffer
	err := run([]string{"replay", "--all", "--scratch", redisServer.URL}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 accounts differ") {
		t.Fatalf("audit error %v, want 1 of 2 accounts differing\n%s", err, out.String())
	}
	for _, want := range []string{"read 4 events of 2 accounts", "compared 2 of 2 accounts: 1 differ", "DIFFERS acct-drifted", "audit: 2 accounts, 1 differ"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	doc, err := redisServer.Client(t).Get(context.Background(), "refunds-scratch:replay:acct-drifted").Result()
	if err != nil || !strings.Contains(doc, `"cash":"100.00"`) {
		t.Errorf("scratch key of acct-drifted: %q, %v; want the rebuilt account with cash 100.00", doc, err)
	}
	if ttl := redisServer.Client(t).TTL(context.Background(), "refunds-scratch:replay:acct-good").Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("scratch key TTL %s, want it to expire within 24h", ttl)
	}
}
