package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
)

// refundctl takes the NATS security flags (and their environment variables) refundd
// takes: it publishes to a server that requires TLS with a CA of its own when given
// the CA, and fails with the reason without it.
func TestRefundctlVerifiesNATSWithTheGivenCA(t *testing.T) {
	url, ca := testenv.StartNATSWithTLS(t, false)
	nc, err := nats.Connect(url, nats.RootCAs(ca.File))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := consumers.EnsureStreams(ctx, js, consumers.StreamSettings{}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REFUNDS_NATS_URL", url)
	publishArgs := []string{"publish", "-type", "billing.account.opened", "-account", "acct-ctl-tls", "-id", "ctl-tls-1",
		"-data", `{"holder_type":"individual","holder_name":"Li Wei","verified":true}`}

	var out bytes.Buffer
	if err := run(publishArgs, &out); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("without the CA: %v, want a verification error", err)
	}
	if err := run(append([]string{"--nats-ca", t.TempDir() + "/missing.pem"}, publishArgs...), &out); !errors.Is(err, connect.ErrInvalid) {
		t.Fatalf("with a missing CA file: %v, want connect.ErrInvalid", err)
	}
	if err := run(append([]string{"--nats-ca", ca.File}, publishArgs...), &out); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if !strings.Contains(out.String(), "published billing.account.opened ctl-tls-1") {
		t.Fatalf("output %q", out.String())
	}
	stream, err := js.Stream(ctx, consumers.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.GetLastMsgForSubject(ctx, "billing.account.opened.acct-ctl-tls"); err != nil {
		t.Fatalf("the event is not in the inbound stream: %v", err)
	}

	// The same from the environment.
	t.Setenv("REFUNDS_NATS_CA", ca.File)
	out.Reset()
	if err := run([]string{"deadletters"}, &out); err != nil || !strings.Contains(out.String(), "0 dead letters") {
		t.Fatalf("deadletters with REFUNDS_NATS_CA: %v\n%s", err, out.String())
	}
}
