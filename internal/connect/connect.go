// Package connect holds what refundd and refundctl share to reach NATS and Redis
// beyond their URLs: NKey and creds-file authentication, TLS with a custom CA and
// client certificates. Passwords stay in the URLs (nats://user:pass@..., redis://
// user:pass@...); everything here is a file path, read when the process starts so that
// a missing or unusable file is a configuration error, not a runtime surprise.
//
// Nothing here logs, and no error carries a key, seed or JWT: only file paths.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"
)

// ErrInvalid is wrapped by every error about these settings.
var ErrInvalid = errors.New("invalid connection settings")

// NATS is how a client authenticates to NATS and verifies the server, beyond the user
// and password its URL may carry. Every field is a file path; empty means unused.
type NATS struct {
	// CredsFile is a .creds file (user JWT and NKey seed), for servers in operator
	// mode (--nats-creds, REFUNDS_NATS_CREDS). Excludes NKeyFile.
	CredsFile string
	// NKeyFile holds a user NKey seed (SU...), plain or decorated (--nats-nkey,
	// REFUNDS_NATS_NKEY). Excludes CredsFile.
	NKeyFile string
	// CAFile is PEM certificates the server's certificate must chain to (--nats-ca,
	// REFUNDS_NATS_CA). Setting it requires TLS; without it, a tls:// URL is verified
	// against the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, both or neither
	// (--nats-cert/--nats-key, REFUNDS_NATS_CERT/REFUNDS_NATS_KEY), for servers that
	// verify clients.
	CertFile, KeyFile string
}

// RegisterFlags adds --nats-creds, --nats-nkey, --nats-ca, --nats-cert and --nats-key
// to fs, each defaulting to its environment variable as getenv reads it.
func (n *NATS) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&n.CredsFile, "nats-creds", getenv("REFUNDS_NATS_CREDS"), "NATS .creds file: user JWT and NKey seed, for a server in operator mode (env REFUNDS_NATS_CREDS)")
	fs.StringVar(&n.NKeyFile, "nats-nkey", getenv("REFUNDS_NATS_NKEY"), "file holding the NATS user's NKey seed (env REFUNDS_NATS_NKEY)")
	fs.StringVar(&n.CAFile, "nats-ca", getenv("REFUNDS_NATS_CA"), "PEM CA file that verifies the NATS server; requires TLS (env REFUNDS_NATS_CA)")
	fs.StringVar(&n.CertFile, "nats-cert", getenv("REFUNDS_NATS_CERT"), "PEM client certificate for NATS, with --nats-key (env REFUNDS_NATS_CERT)")
	fs.StringVar(&n.KeyFile, "nats-key", getenv("REFUNDS_NATS_KEY"), "PEM private key of --nats-cert (env REFUNDS_NATS_KEY)")
}

// Used says whether any of the settings is given.
func (n NATS) Used() bool { return n != NATS{} }

// Auth names the authentication in use, for a log line: "creds", "nkey" or "url"
// (user and password in the URL, or none).
func (n NATS) Auth() string {
	switch {
	case n.CredsFile != "":
		return "creds"
	case n.NKeyFile != "":
		return "nkey"
	}
	return "url"
}

// Options are the nats.Connect options for these settings, after checking every file:
// the creds file has a user JWT and a user seed, the NKey file a user seed, the CA file
// at least one certificate, the client certificate matches its key.
func (n NATS) Options() ([]nats.Option, error) {
	if n.CredsFile != "" && n.NKeyFile != "" {
		return nil, fmt.Errorf("%w: --nats-creds and --nats-nkey are exclusive: a creds file already holds the user's NKey seed", ErrInvalid)
	}
	var opts []nats.Option
	if n.CredsFile != "" {
		if err := checkCreds(n.CredsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.NKeyFile != "" {
		// Reads and checks the seed now; it is read again to sign each connect's nonce.
		opt, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --nats-nkey %s: %w", ErrInvalid, n.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if n.CAFile != "" {
		if _, err := certPool("--nats-ca", n.CAFile); err != nil {
			return nil, err
		}
		// Re-read on every (re)connect, so a rotated CA file is picked up.
		opts = append(opts, nats.RootCAs(n.CAFile))
	}
	if n.CertFile != "" || n.KeyFile != "" {
		if _, err := clientCert("--nats-cert", "--nats-key", n.CertFile, n.KeyFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.ClientCert(n.CertFile, n.KeyFile))
	}
	return opts, nil
}

// checkCreds reads a .creds file and checks it holds a user JWT and a user seed; the
// copy read here is wiped.
func checkCreds(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: --nats-creds: %w", ErrInvalid, err)
	}
	defer wipe(data)
	// ParseDecoratedJWT returns an undecorated file whole, seed and all: its result is
	// only checked, never put in an error.
	token, _ := nkeys.ParseDecoratedJWT(data)
	if _, err := jwt.DecodeUserClaims(token); err != nil {
		return fmt.Errorf("%w: --nats-creds %s holds no user JWT (write it with nsc or jwt.FormatUserConfig)", ErrInvalid, path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		return fmt.Errorf("%w: --nats-creds %s: no user NKey seed: %w", ErrInvalid, path, err)
	}
	kp.Wipe()
	return nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}

// RedisTLS is what a client verifies a Redis server with, and the certificate it shows
// it, for a rediss:// URL. Every field is a file path; empty means unused.
type RedisTLS struct {
	// CAFile is PEM certificates the server's certificate must chain to (--redis-ca,
	// REFUNDS_REDIS_CA). Without it, a rediss:// URL is verified against the system's
	// roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, both or neither
	// (--redis-cert/--redis-key, REFUNDS_REDIS_CERT/REFUNDS_REDIS_KEY), for servers
	// run with tls-auth-clients yes.
	CertFile, KeyFile string
}

// RegisterFlags adds --redis-ca, --redis-cert and --redis-key to fs, each defaulting
// to its environment variable as getenv reads it.
func (r *RedisTLS) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&r.CAFile, "redis-ca", getenv("REFUNDS_REDIS_CA"), "PEM CA file that verifies the Redis server; needs a rediss:// URL (env REFUNDS_REDIS_CA)")
	fs.StringVar(&r.CertFile, "redis-cert", getenv("REFUNDS_REDIS_CERT"), "PEM client certificate for Redis, with --redis-key (env REFUNDS_REDIS_CERT)")
	fs.StringVar(&r.KeyFile, "redis-key", getenv("REFUNDS_REDIS_KEY"), "PEM private key of --redis-cert (env REFUNDS_REDIS_KEY)")
}

// Used says whether any of the settings is given.
func (r RedisTLS) Used() bool { return r != RedisTLS{} }

// Apply checks the files and sets them on base, the TLS configuration go-redis parsed
// from a rediss:// URL (it names the server). base is nil for a redis:// URL, which
// these settings are refused with: they would be silently ignored.
func (r RedisTLS) Apply(base *tls.Config) error {
	if !r.Used() {
		return nil
	}
	if base == nil {
		return fmt.Errorf("%w: --redis-ca, --redis-cert and --redis-key need a rediss:// URL; with redis:// the connection is not encrypted", ErrInvalid)
	}
	if r.CAFile != "" {
		pool, err := certPool("--redis-ca", r.CAFile)
		if err != nil {
			return err
		}
		base.RootCAs = pool
	}
	if r.CertFile != "" || r.KeyFile != "" {
		cert, err := clientCert("--redis-cert", "--redis-key", r.CertFile, r.KeyFile)
		if err != nil {
			return err
		}
		base.Certificates = []tls.Certificate{cert}
	}
	if base.MinVersion == 0 {
		base.MinVersion = tls.VersionTLS12
	}
	return nil
}

// NewRedisClient is a client for the single Redis redisURL names or, with cluster, for
// the Redis Cluster whose seed nodes it names (redis://host:port?addr=host2:port2...),
// with tlsFiles applied to a rediss:// URL.
func NewRedisClient(redisURL string, cluster bool, tlsFiles RedisTLS) (redis.UniversalClient, error) {
	if cluster {
		opts, err := redis.ParseClusterURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: redis cluster url %s: %w", ErrInvalid, redacted(redisURL), err)
		}
		if err := tlsFiles.Apply(opts.TLSConfig); err != nil {
			return nil, err
		}
		defaultProtocol(&opts.Protocol)
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: redis url %s: %w", ErrInvalid, redacted(redisURL), err)
	}
	if err := tlsFiles.Apply(opts.TLSConfig); err != nil {
		return nil, err
	}
	defaultProtocol(&opts.Protocol)
	return redis.NewClient(opts), nil
}

// DefaultRedisProtocol is the protocol the clients speak unless the URL asks for
// another (?protocol=3): RESP2. go-redis defaults to RESP3, where it looks for push
// notifications before every reply it reads; the engine subscribes to nothing and
// uses no client-side cache, so that is work for nothing. In BenchmarkCommitWorkload,
// RESP2 took the Go side of a commit from 1.92 s of CPU to 1.72 s for the same steps.
const DefaultRedisProtocol = 2

// defaultProtocol sets a client's protocol (the single and the cluster client's
// options are different types) to DefaultRedisProtocol unless the URL chose one.
func defaultProtocol(protocol *int) {
	if *protocol == 0 {
		*protocol = DefaultRedisProtocol
	}
}

// certPool reads a PEM file that must hold at least one certificate.
func certPool(flagName, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, flagName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%w: %s %s holds no PEM certificate", ErrInvalid, flagName, path)
	}
	return pool, nil
}

// clientCert loads a client certificate and its key; both must be given.
func clientCert(certFlag, keyFlag, certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: %s and %s go together: give both or neither", ErrInvalid, certFlag, keyFlag)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// The standard library's message names files and PEM block types, not key bytes.
		return tls.Certificate{}, fmt.Errorf("%w: %s %s / %s %s: %w", ErrInvalid, certFlag, certFile, keyFlag, keyFile, err)
	}
	return cert, nil
}

// redacted is a URL fit for an error message: its password is replaced by "xxxxx".
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
