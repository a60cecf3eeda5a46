package main

import (
	"context"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/internal/testenv"
)

// secretsOf are the strings of the files a run uses that must never reach its logs:
// a seed file's seed, a creds file's JWT and seed, and a PEM key's base64 lines.
func secretsOf(t *testing.T, files ...string) []string {
	t.Helper()
	var secrets []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if block, _ := pem.Decode(data); block != nil {
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if !strings.HasPrefix(line, "-----") {
					secrets = append(secrets, line)
				}
			}
			continue
		}
		if token, err := nkeys.ParseDecoratedJWT(data); err == nil && strings.Count(token, ".") == 2 {
			secrets = append(secrets, token)
		}
		kp, err := nkeys.ParseDecoratedNKey(data)
		if err != nil {
			t.Fatalf("%s holds neither a PEM block nor a seed: %v", f, err)
		}
		seed, _ := kp.Seed()
		secrets = append(secrets, string(seed))
	}
	return secrets
}

// TestRefunddRunsWithEachSecurityMechanism runs the engine end to end against servers
// that each require one mechanism (TLS with a CA of their own and client
// certificates, an NKey user, creds in operator mode), and scans the run's logs for
// the secrets it used.
func TestRefunddRunsWithEachSecurityMechanism(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (natsURL, redisURL string, cfg func(*Config), secretFiles []string)
	}{
		{"nats and redis with mutual tls", func(t *testing.T) (string, string, func(*Config), []string) {
			natsURL, natsCA := testenv.StartNATSWithTLS(t, true)
			natsCert, natsKey := natsCA.Issue(t, "refundd")
			redisURL, redisCA := testenv.StartRedisWithTLS(t, true)
			redisCert, redisKey := redisCA.Issue(t, "refundd")
			return natsURL, redisURL, func(c *Config) {
				c.NATS.CAFile, c.NATS.CertFile, c.NATS.KeyFile = natsCA.File, natsCert, natsKey
				c.RedisTLS.CAFile, c.RedisTLS.CertFile, c.RedisTLS.KeyFile = redisCA.File, redisCert, redisKey
			}, []string{natsKey, redisKey}
		}},
		{"nats with an nkey", func(t *testing.T) (string, string, func(*Config), []string) {
			natsURL, seed := testenv.StartNATSWithNKey(t)
			return natsURL, testenv.StartRedis(t).URL, func(c *Config) { c.NATS.NKeyFile = seed }, []string{seed}
		}},
		{"nats with creds", func(t *testing.T) (string, string, func(*Config), []string) {
			natsURL, creds := testenv.StartNATSWithCreds(t)
			return natsURL, testenv.StartRedis(t).URL, func(c *Config) { c.NATS.CredsFile = creds }, []string{creds}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			natsURL, redisURL, secure, files := tc.start(t)
			logs := &lockedBuffer{}
			capturedLogs = logs
			t.Cleanup(func() { capturedLogs = nil })
			d := startDaemon(t, natsURL, redisURL, func(c *Config, _ *hooks) { secure(c) })
			const acct = "acct-secure"
			d.openWithTopUp(t, acct)
			d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
			waitFor(t, func() string {
				if n := len(d.outbound(t, acct)); n == 0 {
					return "no outbound event published for " + acct
				}
				return ""
			})
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			secrets := secretsOf(t, files...)
			if len(secrets) == 0 {
				t.Fatal("no secrets to look for: the scan would prove nothing")
			}
			for _, secret := range secrets {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the logs carry secret material from %v: %q", files, secret)
				}
			}
			if !strings.Contains(logs.String(), "connected to NATS") {
				t.Error("no connection was logged: the scan would prove nothing")
			}
		})
	}
}

// TestRefunddWithoutTheRightCredentialNeverBecomesReady: refundd started without the
// credential a server requires, or verifying it with the wrong CA, does not become
// ready, and its logs say why.
func TestRefunddWithoutTheRightCredentialNeverBecomesReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (natsURL, redisURL string, cfg func(*Config))
		want  string
	}{
		{"nats tls verified with another CA", func(t *testing.T) (string, string, func(*Config)) {
			natsURL, _ := testenv.StartNATSWithTLS(t, false)
			other := testenv.NewCA(t)
			return natsURL, testenv.StartRedis(t).URL, func(c *Config) { c.NATS.CAFile = other.File }
		}, "certificate signed by unknown authority"},
		{"nats mutual tls without a client certificate", func(t *testing.T) (string, string, func(*Config)) {
			natsURL, ca := testenv.StartNATSWithTLS(t, true)
			return natsURL, testenv.StartRedis(t).URL, func(c *Config) { c.NATS.CAFile = ca.File }
			// TLS 1.3 finishes the client's handshake before the server checks its
			// certificate: the client reads the server's alert, or finds the
			// connection closed when it writes, whichever comes first.
		}, "tls: certificate required|connection closed by remote after tls handshake"},
		{"nats nkey user without the seed", func(t *testing.T) (string, string, func(*Config)) {
			natsURL, _ := testenv.StartNATSWithNKey(t)
			return natsURL, testenv.StartRedis(t).URL, func(*Config) {}
		}, "authorization violation"},
		{"nats operator mode without creds", func(t *testing.T) (string, string, func(*Config)) {
			natsURL, _ := testenv.StartNATSWithCreds(t)
			return natsURL, testenv.StartRedis(t).URL, func(*Config) {}
		}, "authorization violation"},
		{"redis tls verified with another CA", func(t *testing.T) (string, string, func(*Config)) {
			redisURL, _ := testenv.StartRedisWithTLS(t, false)
			other := testenv.NewCA(t)
			return testenv.StartNATS(t).URL, redisURL, func(c *Config) { c.RedisTLS.CAFile = other.File }
		}, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			natsURL, redisURL, adjust := tc.start(t)
			cfg := Config{NATSURL: natsURL, RedisURL: redisURL, HTTPAddr: "127.0.0.1:0", ReserveHold: 24 * time.Hour, Instance: "refused"}
			adjust(&cfg)
			if err := cfg.validate(); err != nil {
				t.Fatalf("the configuration itself is refused: %v", err)
			}
			expectNeverReady(t, cfg, tc.want)
		})
	}
}

// expectNeverReady runs refundd with cfg until its logs carry want (one of its
// "|"-separated alternatives, case ignored), checks it did not
// become ready meanwhile, stops it, and checks it stopped cleanly.
func expectNeverReady(t *testing.T, cfg Config, want string) {
	t.Helper()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		h := &hooks{ready: func(string) { close(ready) }}
		result <- run(ctx, cfg, zerolog.New(logs), h)
	}()
	waitFor(t, func() string {
		select {
		case err := <-result:
			t.Fatalf("refundd stopped by itself: %v\n%s", err, logs.String())
		default:
		}
		said := strings.ToLower(logs.String())
		if !slices.ContainsFunc(strings.Split(strings.ToLower(want), "|"), func(w string) bool { return strings.Contains(said, w) }) {
			return "the logs do not say " + want + ":\n" + logs.String()
		}
		return ""
	})
	select {
	case <-ready:
		t.Fatalf("refundd became ready:\n%s", logs.String())
	default:
	}
	cancel()
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("refundd did not stop within 30s")
	}
	t.Logf("refused as expected:\n%s", logs.String())
}
