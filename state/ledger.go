package state

import (
	"time"

	"github.com/shopspring/decimal"
)

// Reserve states, as the read API names them.
const (
	ReserveNone         = "none"
	ReserveFrozen       = "frozen"
	ReserveCountingDown = "counting_down"
)

// Ledger is an account's money, derived from its facts. Every amount is exact.
type Ledger struct {
	Currency string
	// Cash is top-up remainders plus transferred funds. Never negative.
	Cash decimal.Decimal
	// Transferred is what is left of funds received from other accounts: usable for
	// consumption and offsetting, never withdrawable.
	Transferred decimal.Decimal
	// Vouchers is complimentary balance: usable, never cash, never withdrawable.
	Vouchers    decimal.Decimal
	CreditNotes decimal.Decimal
	Overdue     decimal.Decimal
	Unsettled   decimal.Decimal
	// Held is money in open withdrawal and refund cases.
	Held decimal.Decimal
	// Reserve is the pay-as-you-go reserve while it is frozen or counting down.
	Reserve         decimal.Decimal
	ReserveState    string
	ReserveUnfreeze *time.Time
	// ReserveHold is how long the reserve stays frozen after the last release.
	ReserveHold time.Duration
	// Unfunded is consumption no received money covers yet, because it was recorded
	// before the top-up that pays for it; that top-up absorbs it when it arrives.
	Unfunded decimal.Decimal
	// Consumed is the cash consumption that money covered: Consumed + Unfunded is all
	// cash consumption recorded.
	Consumed decimal.Decimal
	// Received is all money that came in: top-ups plus transfers net of recalls.
	Received decimal.Decimal
	// PaidOut is what withdrawal and refund cases paid out of cash.
	PaidOut decimal.Decimal
	// Credited is what refunds credited to the balance, and NonTopUp what is left of
	// it: non-top-up funds, in cash, withdrawable only by a reviewed application [001].
	Credited     decimal.Decimal
	NonTopUp     decimal.Decimal
	Withdrawable decimal.Decimal
	TopUps       []TopUpBalance
}

// TopUpBalance is one top-up order as the withdrawal rules see it.
type TopUpBalance struct {
	TopUp
	Consumed  decimal.Decimal
	PaidOut   decimal.Decimal
	Remaining decimal.Decimal
	Held      decimal.Decimal
	// Withdrawable is the order's remainder less what is held on it, never more than
	// the account's withdrawable balance.
	Withdrawable       decimal.Decimal
	OriginalRouteUntil time.Time
}

// ToSettle is what must be settled before cash can leave: credit notes + overdue +
// unsettled [001].
func (l Ledger) ToSettle() decimal.Decimal {
	return plus(plus(l.CreditNotes, l.Overdue), l.Unsettled)
}

// Ledger derives the account's balances.
//
// Consumption draws from transferred funds first (they can never be withdrawn), then
// from top-ups first recharged, first consumed [000]. It is recomputed from the totals
// each time, so the allocation cannot depend on the order events arrived in.
//
// Withdrawable follows seed 001's calculation, where transferred funds offset what
// must be settled first and only the remainder freezes cash:
//
//	withdrawable = max(0, cash − held − reserve − max(transferred, to_settle))
func (a Account) Ledger(r Rules) Ledger { return a.ledger(r, true) }

// balances are the balances a balance notice compares, from Ledger without the
// per-top-up detail: they are needed twice for every event, so a decision keeps what
// it computed on the account it returns.
func (a Account) balances(r Rules) knownBalances {
	under := balanceRulesOf(r)
	if k := a.knownBalances; k != nil && k.under.same(under) {
		return *k
	}
	l := a.ledger(r, false)
	return knownBalances{currency: l.Currency, cash: l.Cash, withdrawable: l.Withdrawable, under: under}
}

func (a Account) ledger(r Rules, perTopUp bool) Ledger {
	l := Ledger{Currency: a.currencyOr(r.DefaultCurrency)}
	if perTopUp {
		l.TopUps = make([]TopUpBalance, len(a.TopUps))
	}

	transferredIn := decimal.Zero
	for _, t := range a.Transfers {
		transferredIn = plus(transferredIn, minus(t.Received, t.Recalled))
	}
	fromTransferred := decimal.Min(a.Consumed, transferredIn)
	l.Transferred = minus(transferredIn, fromTransferred)
	toAllocate := minus(a.Consumed, fromTransferred)
	l.Received = transferredIn

	// Money held by open cases is frozen: consumption never draws on it, so what a
	// case holds stays in cash until the case ends. Consumption beyond the money not
	// held is unfunded, as consumption before its top-up is.
	var heldOn map[string]decimal.Decimal
	for _, c := range a.Cases {
		if held := c.Holds(); held.IsPositive() {
			l.Held = plus(l.Held, held)
			put(&heldOn, c.TopupID, plus(heldOn[c.TopupID], held))
		}
	}
	// Refunds credited to the balance are non-top-up funds. A payout or a hold of a
	// non-top-up application names no top-up: it draws on those funds first, then on
	// the most recent recharges, as if it had been set aside last.
	credits := a.Credited
	unnamedOut, unnamedHeld := a.PaidOut[""], heldOn[""]
	fromCredits := decimal.Min(unnamedOut, credits)
	credits, unnamedOut = minus(credits, fromCredits), minus(unnamedOut, fromCredits)
	heldOnCredits := decimal.Min(unnamedHeld, credits)
	unnamedHeld = minus(unnamedHeld, heldOnCredits)

	var paidOutOf []decimal.Decimal // by top-up index; nil while nothing was paid out
	if len(a.PaidOut) > 0 {
		paidOutOf = make([]decimal.Decimal, len(a.TopUps))
		for i := range a.TopUps {
			paidOutOf[i] = a.PaidOut[a.TopUps[i].ID]
		}
	}
	for i := len(a.TopUps) - 1; i >= 0 && unnamedOut.IsPositive(); i-- {
		t := a.TopUps[i]
		take := decimal.Min(unnamedOut, decimal.Max(decimal.Zero, minus(minus(t.Amount, paidOutOf[i]), heldOn[t.ID])))
		paidOutOf[i] = plus(paidOutOf[i], take)
		unnamedOut = minus(unnamedOut, take)
	}
	toTopUps := toAllocate
	if unnamedHeld.IsPositive() {
		// Keep the top-ups' money a non-top-up application holds away from consumption.
		free := decimal.Zero
		for i, t := range a.TopUps {
			free = plus(free, decimal.Max(decimal.Zero, minus(minus(t.Amount, amountAt(paidOutOf, i)), heldOn[t.ID])))
		}
		toTopUps = decimal.Min(toAllocate, decimal.Max(decimal.Zero, minus(free, unnamedHeld)))
	}
	beyond := minus(toAllocate, toTopUps)

	l.Cash = l.Transferred
	if !perTopUp {
		// Without the per-top-up detail only sums are needed, and the greedy allocation
		// below uses, over all top-ups, min(consumption, Σ available): the same totals
		// for a fraction of the decimal arithmetic (balances are computed for every
		// event, and an account keeps every top-up it ever had).
		totals := a.topUpTotals()
		recharged := totals.recharged
		// Nothing paid out or held, and no negative amount (which no valid event
		// carries, but an amount is not trusted to be positive here): every top-up is
		// left and available whole.
		left, available := recharged, recharged
		if paidOutOf != nil || heldOn != nil || totals.anyNegative {
			left, available = decimal.Zero, decimal.Zero
			for i, t := range a.TopUps {
				leftOf := minus(t.Amount, amountAt(paidOutOf, i))
				left = plus(left, leftOf)
				available = plus(available, decimal.Max(decimal.Zero, minus(leftOf, heldOn[t.ID])))
			}
		}
		used := decimal.Min(toTopUps, available)
		toTopUps = minus(toTopUps, used)
		l.Cash = plus(l.Cash, minus(left, used))
		l.Received = plus(l.Received, recharged)
	} else {
		for i, t := range a.TopUps {
			// What a case paid out of a top-up is gone before consumption is allocated:
			// the payout named its top-up, consumption names none.
			paidOut := amountAt(paidOutOf, i)
			available := decimal.Max(decimal.Zero, minus(minus(t.Amount, paidOut), heldOn[t.ID]))
			used := decimal.Min(toTopUps, available)
			toTopUps = minus(toTopUps, used)
			remaining := minus(minus(t.Amount, paidOut), used)
			l.TopUps[i] = TopUpBalance{
				TopUp:              t,
				Consumed:           used,
				PaidOut:            paidOut,
				Held:               heldOn[t.ID],
				Remaining:          remaining,
				OriginalRouteUntil: t.ReceivedAt.AddDate(0, 0, r.RouteWindows.Days(t.Channel, t.Banking, t.Bank)),
			}
			l.Cash = plus(l.Cash, remaining)
			l.Received = plus(l.Received, t.Amount)
		}
	}
	// Consumption the top-ups do not cover draws on non-top-up funds not held, and
	// what is left is unfunded.
	beyond = plus(beyond, toTopUps)
	fromCreditsForConsumption := decimal.Min(beyond, minus(credits, heldOnCredits))
	credits = minus(credits, fromCreditsForConsumption)
	l.NonTopUp, l.Credited = credits, a.Credited
	l.Cash = plus(l.Cash, credits)
	for _, p := range a.PaidOut {
		l.PaidOut = plus(l.PaidOut, p)
	}
	l.Unfunded = minus(beyond, fromCreditsForConsumption)
	l.Consumed = minus(a.Consumed, l.Unfunded)

	l.Vouchers = decimal.Max(decimal.Zero, minus(a.VouchersGranted, a.VouchersUsed))
	for _, c := range a.Cycles {
		if c.Settled == nil {
			l.Unsettled = plus(l.Unsettled, c.Accrued)
		}
	}
	for _, b := range a.Bills {
		l.Overdue = plus(l.Overdue, minus(b.Amount, b.Paid))
	}
	for _, n := range a.CreditNotes {
		l.CreditNotes = plus(l.CreditNotes, minus(n.Amount, n.Resolved))
	}

	l.ReserveHold = r.ReserveHold
	l.ReserveState, l.ReserveUnfreeze = a.reserve(r)
	if l.ReserveState != ReserveNone {
		l.Reserve = r.ReserveAmount
	}

	frozen := plus(plus(l.Held, l.Reserve), decimal.Max(l.Transferred, l.ToSettle()))
	l.Withdrawable = decimal.Max(decimal.Zero, minus(l.Cash, frozen))
	for i := range l.TopUps {
		t := &l.TopUps[i]
		t.Withdrawable = decimal.Max(decimal.Zero, decimal.Min(minus(t.Remaining, t.Held), l.Withdrawable))
	}
	return l
}

// reserve is the reserve's state: frozen while a pay-as-you-go resource is active,
// counting down for ReserveHold after the last release until the countdown has been
// run out (ReserveDue), none otherwise.
func (a Account) reserve(r Rules) (string, *time.Time) {
	if a.activePayAsYouGo() > 0 {
		return ReserveFrozen, nil
	}
	if a.LastReleaseAt != nil && (a.ReserveReleasedFor == nil || !a.ReserveReleasedFor.Equal(*a.LastReleaseAt)) {
		at := a.LastReleaseAt.Add(r.ReserveHold)
		return ReserveCountingDown, &at
	}
	return ReserveNone, nil
}

// ReserveDeadline is when the running reserve countdown ends, or nil when none runs.
func (a Account) ReserveDeadline(r Rules) *time.Time {
	_, at := a.reserve(r)
	return at
}

func (a Account) currencyOr(fallback string) string {
	if a.Currency != "" {
		return a.Currency
	}
	return fallback
}

// NonWithdrawable is one reason part of the cash cannot be withdrawn. The parts of a
// ledger add up to cash − withdrawable.
type NonWithdrawable struct {
	Part   string
	Amount decimal.Decimal
	// Until is when the part frees itself (the reserve's countdown), if it does.
	Until *time.Time
}

// Parts of the balance that cannot be withdrawn.
const (
	PartTransferred = "transferred"
	PartHeld        = "held"
	PartReserve     = "reserve"
	PartOverdue     = "overdue"
	PartUnsettled   = "unsettled"
	PartCreditNotes = "credit_notes"
)

// NonWithdrawable answers seed 001's "why is my withdrawable balance low?": the parts
// holding cash back, which add up exactly to cash − withdrawable.
//
// Transferred funds are held back whole, and they offset what must be settled first:
// overdue bills, then unsettled usage, then credit notes (outstanding payments before
// amounts still to be billed or resolved). Only what they do not cover freezes cash.
// When cash is smaller than everything held back, the parts are capped in the order
// listed, so they still add up.
func (l Ledger) NonWithdrawable() []NonWithdrawable {
	parts := []NonWithdrawable{
		{Part: PartTransferred, Amount: l.Transferred},
		{Part: PartHeld, Amount: l.Held},
		{Part: PartReserve, Amount: l.Reserve, Until: l.ReserveUnfreeze},
	}
	offset := l.Transferred
	for _, owed := range []struct {
		part   string
		amount decimal.Decimal
	}{{PartOverdue, l.Overdue}, {PartUnsettled, l.Unsettled}, {PartCreditNotes, l.CreditNotes}} {
		covered := decimal.Min(offset, owed.amount)
		offset = offset.Sub(covered)
		parts = append(parts, NonWithdrawable{Part: owed.part, Amount: owed.amount.Sub(covered)})
	}

	budget := l.Cash.Sub(l.Withdrawable)
	shown := make([]NonWithdrawable, 0, len(parts))
	for _, p := range parts {
		capped := decimal.Min(p.Amount, budget)
		if !capped.IsPositive() {
			continue
		}
		budget = budget.Sub(capped)
		p.Amount = capped
		shown = append(shown, p)
	}
	return shown
}

// sumOfAmounts is the sum of the top-ups' amounts. Amounts are exact decimals with
// few digits (cents, at most 10^12 a top-up), so they are summed as integers scaled to
// the smallest exponent among them, without a big.Int per addition; an amount with
// more digits, or a sum that would not fit in an int64, is summed with decimal's own
// arithmetic. Either way the result is the exact sum.
func sumOfAmounts(ts []TopUp) decimal.Decimal {
	if len(ts) == 0 {
		return decimal.Zero
	}
	exp := ts[0].Amount.Exponent()
	for _, t := range ts {
		exp = min(exp, t.Amount.Exponent())
	}
	var sum int64
	for _, t := range ts {
		shift := int(t.Amount.Exponent() - exp)
		if shift > 18 || t.Amount.NumDigits()+shift > 18 {
			return sumOfAmountsExactly(ts)
		}
		c := t.Amount.CoefficientInt64() * pow10[shift] // fewer than 19 digits: fits
		next := sum + c
		if (c > 0 && next < sum) || (c < 0 && next > sum) {
			return sumOfAmountsExactly(ts) // would overflow
		}
		sum = next
	}
	return decimal.New(sum, exp)
}

func sumOfAmountsExactly(ts []TopUp) decimal.Decimal {
	sum := decimal.Zero
	for _, t := range ts {
		sum = sum.Add(t.Amount)
	}
	return sum
}

// pow10 are the powers of ten that fit in an int64.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// amountAt is amounts[i], or zero when there are no amounts.
func amountAt(amounts []decimal.Decimal, i int) decimal.Decimal {
	if amounts == nil {
		return decimal.Zero
	}
	return amounts[i]
}

// plus and minus are a+b and a-b, without the arithmetic when b (or, adding, a) is
// zero: most of an account's ledger sums parts that are zero (nothing held, paid out,
// transferred or credited), and the balances are computed after every event. The result
// is the same number; only its exponent may differ from Add's, which no comparison and
// no written form (String, StringFixed, Amount) shows.
func plus(a, b decimal.Decimal) decimal.Decimal {
	switch {
	case b.IsZero():
		return a
	case a.IsZero():
		return b
	}
	return a.Add(b)
}

func minus(a, b decimal.Decimal) decimal.Decimal {
	if b.IsZero() {
		return a
	}
	return a.Sub(b)
}
