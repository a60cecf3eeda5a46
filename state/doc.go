// Package state is the refund engine's domain: an account's ledger, its cases and the
// reserve countdown, and the rules that decide how each event changes them.
//
// It is pure. Nothing here reads a clock, touches the network or imports NATS or Redis:
// a decision is a function of (account, event, now) that returns the new account and the
// events to publish, so every rule is testable with tables and no servers. Persistence
// lives in state/redisstore; intake in consumers; publishing in producers.
//
// Money is decimal.Decimal throughout. The only rounding is where a rule names one.
package state
