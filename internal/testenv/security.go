package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"github.com/testcontainers/testcontainers-go"
)

// Servers that require each way of authenticating or encrypting that refundd supports.
// Each runs on the host's network until the test ends; its files (certificates,
// configuration) are made in the test's temporary directory and copied into the
// container, so nothing depends on where the Docker daemon runs.

// natsConfDir is where the NATS servers' files are copied in the container.
const natsConfDir = "/tmp/nats"

// StartNATSWithTLS starts one NATS server with JetStream that requires TLS, with a
// certificate from a CA of its own, and returns its URL and the CA (whose File
// verifies it). With clientCerts the server also requires a client certificate from
// that CA: issue one with ca.Issue.
func StartNATSWithTLS(tb testing.TB, clientCerts bool) (url string, ca *CA) {
	tb.Helper()
	ca = NewCA(tb)
	cert, key := ca.Issue(tb, "nats-server")
	conf := fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: %t\n  timeout: 5\n}\n",
		natsConfDir+"/server.pem", natsConfDir+"/server-key.pem", natsConfDir+"/ca.pem", clientCerts)
	port := startNATSWithConfig(tb, "nats (tls)", conf, map[string]string{
		"server.pem": cert, "server-key.pem": key, "ca.pem": ca.File,
	}, nil)
	return "nats://127.0.0.1:" + strconv.Itoa(port), ca
}

// StartNATSWithNKey starts one NATS server with JetStream whose only user is a fresh
// NKey user, and returns its URL and a file holding that user's seed.
func StartNATSWithNKey(tb testing.TB) (url, seedFile string) {
	tb.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		tb.Fatalf("testenv: nkey: %v", err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	seedFile = filepath.Join(tb.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		tb.Fatalf("testenv: write seed: %v", err)
	}
	conf := fmt.Sprintf("authorization {\n  users = [ { nkey: %q } ]\n}\n", pub)
	port := startNATSWithConfig(tb, "nats (nkey)", conf, nil, nil)
	return "nats://127.0.0.1:" + strconv.Itoa(port), seedFile
}

// StartNATSWithCreds starts one NATS server in operator mode (decentralised JWT
// authentication, accounts preloaded in a memory resolver) with JetStream enabled for
// one account, and returns its URL and a .creds file of a user of that account.
func StartNATSWithCreds(tb testing.TB) (url, credsFile string) {
	tb.Helper()
	must := func(what string, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("testenv: creds: %s: %v", what, err)
		}
	}
	operator, err := nkeys.CreateOperator()
	must("operator key", err)
	operatorPub, _ := operator.PublicKey()

	account := func(name string, jetStream bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must("account key", err)
		pub, _ := kp.PublicKey()
		claims := jwt.NewAccountClaims(pub)
		claims.Name = name
		if jetStream {
			claims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := claims.Encode(operator)
		must("account JWT", err)
		return kp, pub, token
	}
	_, sysPub, sysJWT := account("SYS", false)
	acct, acctPub, acctJWT := account("REFUNDS", true)

	opClaims := jwt.NewOperatorClaims(operatorPub)
	opClaims.Name = "refunds-test"
	opClaims.SystemAccount = sysPub
	opJWT, err := opClaims.Encode(operator)
	must("operator JWT", err)

	user, err := nkeys.CreateUser()
	must("user key", err)
	userPub, _ := user.PublicKey()
	userClaims := jwt.NewUserClaims(userPub)
	userClaims.Name = "refundd"
	userJWT, err := userClaims.Encode(acct)
	must("user JWT", err)
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must("creds", err)
	credsFile = filepath.Join(tb.TempDir(), "refundd.creds")
	must("write creds", os.WriteFile(credsFile, creds, 0o600))

	conf := fmt.Sprintf("operator: %q\nsystem_account: %q\nresolver: MEMORY\nresolver_preload: {\n  %s: %q\n  %s: %q\n}\n",
		opJWT, sysPub, sysPub, sysJWT, acctPub, acctJWT)
	port := startNATSWithConfig(tb, "nats (creds)", conf, nil, nil)
	return "nats://127.0.0.1:" + strconv.Itoa(port), credsFile
}

// StartNATSWithPermissions starts one NATS server with JetStream whose users are those
// of deploy/nats/permissions.conf, the file itself, included unchanged; passwords
// gives each user's password by the environment variable the file reads it from
// (REFUNDD_PASSWORD, BILLING_PASSWORD, CONSOLE_PASSWORD, PAYOUT_PASSWORD). It returns
// the URL without credentials.
func StartNATSWithPermissions(tb testing.TB, passwords map[string]string) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	port := startNATSWithConfig(tb, "nats (permissions)", "include \"permissions.conf\"\n", map[string]string{
		"permissions.conf": filepath.Join(root, "deploy", "nats", "permissions.conf"),
	}, passwords)
	return "nats://127.0.0.1:" + strconv.Itoa(port)
}

// startNATSWithConfig runs nats-server with JetStream and conf (a configuration
// file's body; the listen address comes from the command line), with files (name in
// the container's configuration directory -> host path) beside it and env in its
// environment, and returns its port.
func startNATSWithConfig(tb testing.TB, name, conf string, files, env map[string]string) int {
	tb.Helper()
	dir := tb.TempDir()
	confFile := filepath.Join(dir, "nats.conf")
	body := "jetstream {\n  store_dir: \"/data\"\n}\n" + conf
	if err := os.WriteFile(confFile, []byte(body), 0o600); err != nil {
		tb.Fatalf("testenv: %s: %v", name, err)
	}
	copies := []testcontainers.ContainerFile{{HostFilePath: confFile, ContainerFilePath: natsConfDir + "/nats.conf", FileMode: 0o600}}
	for inContainer, host := range files {
		copies = append(copies, testcontainers.ContainerFile{HostFilePath: host, ContainerFilePath: natsConfDir + "/" + inContainer, FileMode: 0o600})
	}
	opts := []testcontainers.ContainerCustomizer{testcontainers.WithFiles(copies...)}
	if len(env) > 0 {
		opts = append(opts, testcontainers.WithEnv(env))
	}
	port, _ := hostNetworkServer(tb, name, requireImagesFor(tb).nats, "Server is ready",
		func(port int) []string {
			return []string{"-c", natsConfDir + "/nats.conf", "--addr", "127.0.0.1", "--port", strconv.Itoa(port)}
		}, opts...)
	return port
}

// StartRedisWithTLS starts one Redis server that accepts only TLS connections, with a
// certificate from a CA of its own, and returns its rediss:// URL and the CA. With
// clientCerts it also requires a client certificate from that CA (tls-auth-clients
// yes): issue one with ca.Issue.
func StartRedisWithTLS(tb testing.TB, clientCerts bool) (url string, ca *CA) {
	tb.Helper()
	ca = NewCA(tb)
	cert, key := ca.Issue(tb, "redis-server")
	const dir = "/tmp/redis"
	copies := []testcontainers.ContainerFile{
		{HostFilePath: cert, ContainerFilePath: dir + "/server.pem", FileMode: 0o600},
		{HostFilePath: key, ContainerFilePath: dir + "/server-key.pem", FileMode: 0o600},
		{HostFilePath: ca.File, ContainerFilePath: dir + "/ca.pem", FileMode: 0o600},
	}
	authClients := "no"
	if clientCerts {
		authClients = "yes"
	}
	port, _ := hostNetworkServer(tb, "redis (tls)", requireImagesFor(tb).redis, "Ready to accept connections",
		func(port int) []string {
			return []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--dir", "/data", "--appendonly", "yes",
				"--tls-cert-file", dir + "/server.pem", "--tls-key-file", dir + "/server-key.pem",
				"--tls-ca-cert-file", dir + "/ca.pem", "--tls-auth-clients", authClients}
		}, testcontainers.WithFiles(copies...))
	return "rediss://127.0.0.1:" + strconv.Itoa(port) + "/0", ca
}
