// Package chaos holds the engine's chaos test (chaos_test.go): a generated workload is
// published while two refundd processes, Redis and NATS are killed with SIGKILL and
// started again, and every account, case, outbound event and dead letter is then
// compared with a single in-memory replay of the same events. It has no code of its
// own; `task chaos` runs the long version.
package chaos
