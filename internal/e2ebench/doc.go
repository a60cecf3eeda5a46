// Package e2ebench holds the end-to-end benchmark (e2ebench_test.go): a generated
// workload of realistic account histories is published to NATS JetStream, then
// consumed by the raw loop, a naive loop and refundd itself (built with go build and
// run as one or two real processes) against Redis with and without the append-only
// file; it prints events per second, latency from publish to the matching outbound
// event at half of refundd's peak, Redis memory per account and refundd's peak RSS.
// It has no code of its own; `task bench` runs it.
package e2ebench
