package testenv_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/testenv"
)

// Each server refuses a client without its credential or that cannot verify it, and
// admits one that has it, with JetStream available to it.
func TestSecuredNATSServersRequireTheirMechanism(t *testing.T) {
	t.Parallel()
	tlsURL, ca := testenv.StartNATSWithTLS(t, false)
	mtlsURL, mca := testenv.StartNATSWithTLS(t, true)
	clientCert, clientKey := mca.Issue(t, "client")
	nkeyURL, seed := testenv.StartNATSWithNKey(t)
	credsURL, creds := testenv.StartNATSWithCreds(t)
	nkeyOpt, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := testenv.NewCA(t)

	for _, tc := range []struct {
		name          string
		url           string
		without, with []nats.Option
	}{
		{"tls", tlsURL, []nats.Option{nats.RootCAs(otherCA.File)}, []nats.Option{nats.RootCAs(ca.File)}},
		{"tls without a CA", tlsURL, nil, []nats.Option{nats.RootCAs(ca.File)}},
		{"mutual tls", mtlsURL, []nats.Option{nats.RootCAs(mca.File)}, []nats.Option{nats.RootCAs(mca.File), nats.ClientCert(clientCert, clientKey)}},
		{"nkey", nkeyURL, nil, []nats.Option{nkeyOpt}},
		{"creds", credsURL, nil, []nats.Option{nats.UserCredentials(creds)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if nc, err := nats.Connect(tc.url, tc.without...); err == nil {
				nc.Close()
				t.Fatal("the server admitted a client without the credential")
			}
			nc, err := nats.Connect(tc.url, tc.with...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.AccountInfo(context.Background()); err != nil {
				t.Fatalf("JetStream is not available to the client: %v", err)
			}
		})
	}
}

func TestSecuredRedisServerRequiresTLS(t *testing.T) {
	t.Parallel()
	for _, clientCerts := range []bool{false, true} {
		url, ca := testenv.StartRedisWithTLS(t, clientCerts)
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		ping := func(cfg *tls.Config) error {
			o := *opts
			o.TLSConfig = cfg
			o.MaxRetries = -1
			c := redis.NewClient(&o)
			defer c.Close()
			return c.Ping(context.Background()).Err()
		}
		pool := func(file string) *x509.CertPool {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p := x509.NewCertPool()
			p.AppendCertsFromPEM(data)
			return p
		}
		if err := ping(nil); err == nil {
			t.Errorf("client certs %t: Redis answered a client without TLS", clientCerts)
		}
		other := testenv.NewCA(t)
		var unknown *tls.CertificateVerificationError
		if err := ping(&tls.Config{ServerName: "127.0.0.1", RootCAs: pool(other.File)}); !errors.As(err, &unknown) {
			t.Errorf("client certs %t: with another CA: %v, want a verification error", clientCerts, err)
		}
		good := &tls.Config{ServerName: "127.0.0.1", RootCAs: pool(ca.File)}
		if clientCerts {
			if err := ping(good); err == nil {
				t.Errorf("Redis answered a client without a certificate")
			}
			certFile, keyFile := ca.Issue(t, "client")
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			good.Certificates = []tls.Certificate{cert}
		}
		if err := ping(good); err != nil {
			t.Errorf("client certs %t: %v", clientCerts, err)
		}
	}
}
