package state

// BalancesForTest is the ledger a decision computes for every event: without the
// per-top-up detail.
func BalancesForTest(a Account, r Rules) Ledger { return a.ledger(r, false) }
