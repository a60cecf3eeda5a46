package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

func TestDeadLettersAreListedAndReplayedOnTheirOriginalSubjects(t *testing.T) {
	js := natsWithStreams(t)
	ctx := context.Background()
	park := func(subject, reason, body string) {
		msg := nats.NewMsg(events.DeadLetterSubject(subject))
		msg.Data = []byte(body)
		msg.Header.Set(events.HeaderReason, reason)
		msg.Header.Set(events.HeaderOriginalSubject, subject)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	park("console.withdrawal.requested.acct-1", "console.withdrawal.requested is not handled by this version of the engine", `{"id":"w-1"}`)
	park("billing.topup.received.acct-2", "currency USD differs from the account's CNY", `{"id":"t-1"}`)

	var listing bytes.Buffer
	if err := run([]string{"deadletters"}, &listing); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listing.String(), "currency USD differs") || !strings.Contains(listing.String(), "2 dead letters") {
		t.Fatalf("listing:\n%s", listing.String())
	}

	var replay bytes.Buffer
	if err := run([]string{"deadletters", "-replay", "-reason", "not handled by this version"}, &replay); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(replay.String(), "replayed 1 of 1") {
		t.Fatalf("replay:\n%s", replay.String())
	}
	inbound, err := js.Stream(ctx, consumers.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inbound.GetLastMsgForSubject(ctx, "console.withdrawal.requested.acct-1")
	if err != nil || string(got.Data) != `{"id":"w-1"}` {
		t.Fatalf("replayed event on its subject: %v %q", err, got.Data)
	}
	// Again: the replayed one is gone, the other is listed, nothing waits or fails.
	var again bytes.Buffer
	if err := run([]string{"deadletters", "-replay", "-reason", "not handled by this version"}, &again); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again.String(), "replayed 0 of 0") {
		t.Fatalf("second replay:\n%s", again.String())
	}
	var byType bytes.Buffer
	if err := run([]string{"deadletters", "-type", "billing.topup.received"}, &byType); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(byType.String(), "1 dead letters") {
		t.Fatalf("by type:\n%s", byType.String())
	}

	dl, err := js.Stream(ctx, consumers.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dl.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("dead letters left: %v, err %v; want only the currency one", info.State.Msgs, err)
	}
}

// natsWithStreams starts NATS for refundctl (REFUNDS_NATS_URL points at it) with the
// engine's streams, and returns a JetStream client on it.
func natsWithStreams(t *testing.T) jetstream.JetStream {
	t.Helper()
	server := testenv.StartNATS(t)
	t.Setenv("REFUNDS_NATS_URL", server.URL)
	js := server.JetStream(t)
	if _, err := consumers.EnsureStreams(context.Background(), js, consumers.StreamSettings{}); err != nil {
		t.Fatal(err)
	}
	return js
}
