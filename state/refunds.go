package state

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// The three refund kinds of console.refund.requested, each a policy over the shared case
// machine (cases.go): service discontinuation [000], order refunds [002] and package
// refunds [003].

// Reason codes of refunds refused at once.
const (
	ReasonNotDiscontinued      = "service_not_discontinued"
	ReasonNothingToRefund      = "nothing_to_refund"
	ReasonRouteNeedsBankAcct   = "alipay_needs_bank_account_in_payers_name"
	ReasonStripeNeedsPaymentID = "stripe_needs_latest_payment_id_and_email"
	ReasonCompanyNeedsProof    = "company_payee_needs_statement_and_verified_company"
	ReasonThirdPartyService    = "third_party_service"
	ReasonFullyUsed            = "fully_used"
	ReasonPurchaseTooOld       = "purchase_over_30_days"
	ReasonTermsViolated        = "terms_violated"
	ReasonAlreadyRefunded      = "already_refunded"
)

// Reasons an order refund may be older than 30 days: the special circumstances of seed
// 002 that are not about the service itself.
var specialOrderReasons = []string{"unauthorized_charge", "duplicate_charge"}

// Package is a purchased package of units [003]. Used counts the units consumed; a
// refunded package is Closed and takes no more consumption.
type Package struct {
	Price  decimal.Decimal
	Units  int64
	Used   int64
	Closed bool
}

// Order is a purchased order [002]: what was paid, how, when, and the usage recorded.
type Order struct {
	Amount        decimal.Decimal
	PaymentMethod string
	PurchasedAt   time.Time
	Used          decimal.Decimal
	ThirdParty    bool
}

// Discontinuation is the customer's request to discontinue service [000]: every
// resource is released, then delayed billing items settle for 3 business days, and only
// then is the refund reviewed. ReleasedAt is when the last resource was released after
// the request (the request's time when none was active).
type Discontinuation struct {
	RequestID   string
	RequestedAt time.Time
	ReleasedAt  *time.Time
}

func (d *decider) purchasePackage(a *Account, p *events.PackageData) (effect, error) {
	price := decimal.Zero
	if p.Price != nil {
		price = p.Price.Decimal
	}
	if existing, ok := a.Packages[p.PackageID]; ok {
		if existing.Price.Equal(price) && existing.Units == p.Units {
			return unchanged, nil
		}
		return unchanged, refuse("package %s was already purchased with price %s and %d units", p.PackageID, cny(existing.Price), existing.Units)
	}
	own(a, sharedPackages, &a.Packages)[p.PackageID] = Package{Price: price, Units: p.Units}
	return changed, nil
}

func (d *decider) consumePackage(a *Account, p *events.PackageData) (effect, error) {
	pkg, ok := a.Packages[p.PackageID]
	switch {
	case !ok:
		return unchanged, wait("package %s is not purchased yet", p.PackageID)
	case pkg.Closed:
		return unchanged, refuse("package %s was refunded; it takes no more consumption", p.PackageID)
	case pkg.Used+p.Units > pkg.Units:
		return unchanged, refuse("consuming %d units of package %s exceeds the %d left", p.Units, p.PackageID, pkg.Units-pkg.Used)
	}
	pkg.Used += p.Units
	own(a, sharedPackages, &a.Packages)[p.PackageID] = pkg
	return changed, nil
}

func (d *decider) purchaseOrder(a *Account, p *events.OrderData) (effect, error) {
	o := Order{Amount: decimal.Zero, PaymentMethod: p.PaymentMethod, PurchasedAt: d.ev.Time.UTC(), Used: decimal.Zero, ThirdParty: p.ThirdParty}
	if p.Amount != nil {
		o.Amount = p.Amount.Decimal
	}
	if p.UsedAmount != nil {
		o.Used = p.UsedAmount.Decimal
	}
	if existing, ok := a.Orders[p.OrderID]; ok {
		if existing.Amount.Equal(o.Amount) && existing.ThirdParty == o.ThirdParty {
			return unchanged, nil
		}
		return unchanged, refuse("order %s was already purchased for %s", p.OrderID, cny(existing.Amount))
	}
	if o.Used.GreaterThan(o.Amount) {
		return unchanged, refuse("order %s: used %s exceeds its amount %s", p.OrderID, cny(o.Used), cny(o.Amount))
	}
	own(a, sharedOrders, &a.Orders)[p.OrderID] = o
	return changed, nil
}

// useOrder records an order's usage. used_amount is the total so far, so a repeat or a
// late, smaller report changes nothing.
func (d *decider) useOrder(a *Account, p *events.OrderData) (effect, error) {
	o, ok := a.Orders[p.OrderID]
	if !ok {
		return unchanged, wait("order %s is not purchased yet", p.OrderID)
	}
	if p.UsedAmount == nil || !p.UsedAmount.GreaterThan(o.Used) {
		return unchanged, nil
	}
	if p.UsedAmount.GreaterThan(o.Amount) {
		return unchanged, refuse("order %s: used %s exceeds its amount %s", p.OrderID, cny(p.UsedAmount.Decimal), cny(o.Amount))
	}
	o.Used = p.UsedAmount.Decimal
	own(a, sharedOrders, &a.Orders)[p.OrderID] = o
	return changed, nil
}

// discontinue starts a service discontinuation [000]: billing is asked to release every
// resource, and the settlement wait starts once all are released.
func (d *decider) discontinue(a *Account, p *events.DiscontinuationRequestedData) (effect, error) {
	if a.Discontinuation != nil {
		return unchanged, nil // discontinuing already; a second request changes nothing
	}
	at := d.ev.Time.UTC()
	a.Discontinuation = &Discontinuation{RequestID: p.RequestID, RequestedAt: at}
	active := a.activeResources()
	if len(active) == 0 {
		a.Discontinuation.ReleasedAt = &at
	}
	return changed, d.publish(events.ResourcesReleaseRequested, &events.ResourcesReleaseRequestedData{RequestID: p.RequestID, ResourceIDs: active})
}

// activeResources are the ids of resources created and not released, sorted.
func (a *Account) activeResources() []string {
	ids := []string{}
	for id, r := range a.Resources {
		if r.Created {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// noteAllReleased starts the settlement wait of a discontinuation when its last
// resource is released; a resource created again stops it.
func (a *Account) noteDiscontinuationResources(at time.Time) {
	if a.Discontinuation == nil {
		return
	}
	switch active := len(a.activeResources()); {
	case active == 0 && a.Discontinuation.ReleasedAt == nil:
		a.Discontinuation.ReleasedAt = &at
	case active > 0:
		a.Discontinuation.ReleasedAt = nil
	}
}

// requestRefund opens a refund case of the requested kind.
func (d *decider) requestRefund(a *Account, p *events.RefundRequestedData) (effect, error) {
	if existing, ok := a.findCase(p.RefundID); ok {
		if existing.Kind == p.Kind && existing.Subject == p.OrderID+p.PackageID {
			return unchanged, nil
		}
		return unchanged, refuse("refund %s was already requested with other content; the first request stands", p.RefundID)
	}
	c := Case{ID: p.RefundID, Kind: p.Kind, OpenedAt: d.ev.Time.UTC(), Subject: p.OrderID + p.PackageID, Destination: p.Destination}
	switch p.Kind {
	case events.RefundPackage:
		return d.requestPackageRefund(a, &c, p)
	case events.RefundOrder:
		return d.requestOrderRefund(a, &c, p)
	default:
		return d.requestDiscontinuationRefund(a, &c, p)
	}
}

// requestPackageRefund credits a package's remaining balance to the account at once:
// price × remaining/units, rounded down to the cent [003]. Refused for an account that
// violated the terms; suspected abuse (many package refunds lately) goes to review.
func (d *decider) requestPackageRefund(a *Account, c *Case, p *events.RefundRequestedData) (effect, error) {
	pkg, ok := a.Packages[p.PackageID]
	if !ok {
		return unchanged, wait("package %s is not purchased yet", p.PackageID)
	}
	c.Amount = packageRemainder(pkg)
	switch {
	case a.TermsViolated:
		return d.refuseAtOnce(a, c, ReasonTermsViolated, "the account violated the terms of service: its packages are not refunded")
	case pkg.Closed:
		return d.refuseAtOnce(a, c, ReasonAlreadyRefunded, "package "+p.PackageID+" was already refunded")
	case !c.Amount.IsPositive():
		return d.refuseAtOnce(a, c, ReasonNothingToRefund, "package "+p.PackageID+" has no balance left")
	}
	pkg.Closed = true
	own(a, sharedPackages, &a.Packages)[p.PackageID] = pkg
	recent := a.recentPackageRefunds(d.happenedAt(), d.rules.PackageRefundWindow)
	a.PackageRefunds = append(recent, d.happenedAt())
	if len(recent) >= d.rules.PackageRefundsBeforeReview {
		reason := fmt.Sprintf("suspected abuse: %d package refunds in %s", len(recent)+1, d.rules.PackageRefundWindow)
		return changed, d.toReview(a, c, ByRules, []string{reason})
	}
	return changed, d.advance(a, c, events.StatusCredited, ByRules, "package balance credited to the account")
}

// packageRemainder is price × (units − used) / units, rounded down to the cent, exactly.
func packageRemainder(p Package) decimal.Decimal {
	if p.Units <= 0 || p.Used >= p.Units {
		return decimal.Zero
	}
	cents := p.Price.Shift(2).BigInt() // the price has at most 2 decimals
	cents.Mul(cents, big.NewInt(p.Units-p.Used))
	cents.Quo(cents, big.NewInt(p.Units)) // truncates: positive, so rounds down
	return decimal.NewFromBigInt(cents, -2)
}

func (a *Account) recentPackageRefunds(now time.Time, window time.Duration) []time.Time {
	var recent []time.Time
	for _, at := range a.PackageRefunds {
		if now.Sub(at) < window {
			recent = append(recent, at)
		}
	}
	return recent
}

// requestOrderRefund checks an order refund's eligibility [002] and sends it to review,
// for paid − used.
func (d *decider) requestOrderRefund(a *Account, c *Case, p *events.RefundRequestedData) (effect, error) {
	o, ok := a.Orders[p.OrderID]
	if !ok {
		return unchanged, wait("order %s is not purchased yet", p.OrderID)
	}
	c.Amount, c.ToBalance, c.PaymentMethod = o.Amount.Sub(o.Used), p.ToBalance, o.PaymentMethod
	age := d.happenedAt().Sub(o.PurchasedAt)
	switch {
	case o.ThirdParty:
		return d.refuseAtOnce(a, c, ReasonThirdPartyService, "services provided by third-party partners are not refundable")
	case !c.Amount.IsPositive():
		return d.refuseAtOnce(a, c, ReasonFullyUsed, "order "+p.OrderID+" is fully used")
	case age > d.rules.OrderRefundWindow && !slices.Contains(specialOrderReasons, strings.TrimSpace(p.Reason)):
		return d.refuseAtOnce(a, c, ReasonPurchaseTooOld, fmt.Sprintf("order %s was purchased more than %d days ago", p.OrderID, int(d.rules.OrderRefundWindow.Hours()/24)))
	}
	expected, err := d.businessDays(d.happenedAt(), 2) // review within 1–2 business days
	if err != nil {
		return unchanged, err
	}
	c.ExpectedBy = &expected
	reason := "order refund"
	if p.Reason != "" {
		reason += ": " + p.Reason
	}
	return changed, d.toReview(a, c, ByRules, []string{reason})
}

// requestDiscontinuationRefund opens the refund of a discontinued service [000]: the
// remainder of the most recently received recharge not yet fully consumed, by the route
// its channel allows. It waits for the settlement of delayed billing items first.
func (d *decider) requestDiscontinuationRefund(a *Account, c *Case, p *events.RefundRequestedData) (effect, error) {
	if a.Discontinuation == nil {
		return d.refuseAtOnce(a, c, ReasonNotDiscontinued, "discontinue service before applying for its refund")
	}
	l := a.Ledger(d.rules)
	var latest *TopUpBalance
	for i := len(l.TopUps) - 1; i >= 0; i-- {
		if t := l.TopUps[i]; t.Remaining.Sub(t.Held).IsPositive() {
			latest = &l.TopUps[i]
			break
		}
	}
	if latest == nil {
		return d.refuseAtOnce(a, c, ReasonNothingToRefund, "no recharge has a remainder to refund; vouchers are never refunded")
	}
	c.TopupID, c.Amount, c.Route = latest.ID, latest.Remaining.Sub(latest.Held), events.RouteOriginal
	if code, reason := d.discontinuationRoute(a, latest.TopUp, p); code != "" {
		return d.refuseAtOnce(a, c, code, reason)
	}
	if p.Destination != nil {
		c.Route = events.RouteDesignated
	}
	return changed, d.advance(a, c, events.StatusAwaitingSettlement, ByRules, "waiting 3 business days after the last resource release for delayed billing items")
}

// discontinuationRoute is the route rule of seed 000 the request breaks, if any. Bank
// recharges go back by the original route. Alipay ones to a bank account in the
// payer's name. Stripe ones need the latest payment's id and the account's email. A
// personal recharge refunded to a company needs a written statement, and the company
// must be the account's verified company.
func (d *decider) discontinuationRoute(a *Account, t TopUp, p *events.RefundRequestedData) (code, reason string) {
	dst := p.Destination
	if dst != nil && dst.PayeeType == events.HolderCompany && t.PayerType == events.HolderIndividual {
		if !p.WrittenStatement || a.HolderType != events.HolderCompany || !a.Verified || dst.PayeeName != a.HolderName {
			return ReasonCompanyNeedsProof, "a personal recharge refunded to a company needs a written statement, and the company must be the account's verified company"
		}
		return "", ""
	}
	switch t.Channel {
	case events.ChannelAlipay:
		if dst == nil || dst.Kind != events.DestinationBankCard || dst.PayeeName != t.PayerName {
			return ReasonRouteNeedsBankAcct, "Alipay recharges are refunded to a bank account in the same company's or person's name as the payer"
		}
	case events.ChannelStripe:
		if p.StripePaymentID == "" || p.StripePaymentID != t.StripePaymentID || p.Email == "" || !strings.EqualFold(p.Email, a.Email) {
			return ReasonStripeNeedsPaymentID, "a Stripe recharge needs the Stripe paymentId of the latest recharge and the account's email"
		}
	}
	return "", ""
}

// settlementTimers are the ends of the settlement waits of discontinuation refunds.
func settlementTimers(a *Account, r Rules) []Timer {
	if a.Discontinuation == nil || a.Discontinuation.ReleasedAt == nil {
		return nil
	}
	var timers []Timer
	for id, c := range a.Cases {
		if c.Kind != events.CaseDiscontinuation || c.Status != events.StatusAwaitingSettlement {
			continue
		}
		end, err := r.Calendar.AddBusinessDays(*a.Discontinuation.ReleasedAt, r.SettlementBusinessDays)
		if err != nil {
			continue // refundd refuses to run past its calendar; nothing to schedule
		}
		timers = append(timers, Timer{Kind: TimerSettlementEnd, Subject: id, At: end})
	}
	return timers
}

// endSettlement moves a discontinuation refund on when its settlement wait has ended:
// the amount is its recharge's remainder now that delayed items are billed; an
// invoiced recharge waits for the red-letter reversal, any other goes to review.
func (d *decider) endSettlement(a *Account, t Timer) (effect, error) {
	c, ok := a.Cases[t.Subject]
	if !ok || c.Status != events.StatusAwaitingSettlement || d.now.Before(t.At) {
		return unchanged, nil
	}
	d.cause = cause{ID: "settlement-end/" + c.ID, Type: events.CaseStatusChanged}
	remaining := decimal.Zero
	if tu, ok := a.Ledger(d.rules).topUp(c.TopupID); ok {
		remaining = tu.Remaining.Sub(tu.Held)
	}
	if !remaining.IsPositive() {
		return changed, d.advanceWithCode(a, &c, events.StatusRejected, ByTimer, ReasonNothingToRefund, "delayed billing items consumed the recharge")
	}
	c.Amount = remaining
	if inv, ok := a.unreversedInvoiceOf(c.TopupID); ok {
		c.InvoiceID = inv
		if err := d.advance(a, &c, events.StatusAwaitingInvoiceReversal, ByTimer, "the recharge was invoiced: the red-letter reversal must be confirmed"); err != nil {
			return unchanged, err
		}
		return changed, d.publish(events.InvoiceReversalRequired, &events.InvoiceReversalRequiredData{CaseID: c.ID, InvoiceID: inv, TopupID: c.TopupID})
	}
	return changed, d.toReview(a, &c, ByTimer, []string{"service discontinuation refund"})
}

func (a *Account) unreversedInvoiceOf(topupID string) (string, bool) {
	ids := make([]string, 0, len(a.Invoices))
	for id, inv := range a.Invoices {
		if inv.TopupID == topupID && !inv.Reversed {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", false
	}
	slices.Sort(ids)
	return ids[0], true
}

// invoiceReversed moves the discontinuation refunds that waited for this invoice's
// reversal on to review.
func (d *decider) invoiceReversed(a *Account, invoiceID string) error {
	ids := make([]string, 0)
	for id, c := range a.Cases {
		if c.Status == events.StatusAwaitingInvoiceReversal && c.InvoiceID == invoiceID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := a.Cases[id]
		if _, still := a.unreversedInvoiceOf(c.TopupID); still {
			continue // another invoice of the same recharge is not reversed yet
		}
		if err := d.toReview(a, &c, ByRules, []string{"service discontinuation refund, invoice reversal confirmed"}); err != nil {
			return err
		}
	}
	return nil
}

// appealRefund sends a rejected order refund to its one secondary review [002].
func (d *decider) appealRefund(a *Account, p *events.RefundAppealedData) (effect, error) {
	c, ok := a.findCase(p.RefundID)
	switch {
	case !ok:
		return unchanged, wait("refund %s is not requested yet", p.RefundID)
	case c.Kind != events.CaseOrder:
		return d.note(a, &c, ByCustomer, "appeal ignored: only order refunds have a secondary review")
	case c.Status != events.StatusRejected:
		return d.note(a, &c, ByCustomer, "appeal ignored: the refund is "+c.Status)
	case c.Appealed:
		return d.note(a, &c, ByCustomer, "appeal ignored: the refund was appealed once already; the secondary review was final")
	}
	c.Appealed = true
	reason := "appeal"
	if p.Reason != "" {
		reason += ": " + p.Reason
	}
	return changed, d.toReview(a, &c, ByCustomer, []string{reason})
}

// toReview moves a case to review (or, after a rejection, to secondary review) and asks
// finance for a decision.
func (d *decider) toReview(a *Account, c *Case, by Actor, reasons []string) error {
	to := events.StatusInReview
	if c.Status == events.StatusRejected {
		to = events.StatusInSecondaryReview
	}
	if err := d.advance(a, c, to, by, "review: "+reasons[0]); err != nil {
		return err
	}
	return d.publish(events.ReviewRequested, &events.ReviewRequestedData{
		CaseID: c.ID, Kind: c.Kind, Amount: events.Amount{Decimal: c.Amount}, Reasons: reasons,
	})
}

// refuseAtOnce opens a case as rejected, with the reason; its amount is what it asked
// for, zero when there was nothing to refund.
func (d *decider) refuseAtOnce(a *Account, c *Case, code, reason string) (effect, error) {
	return changed, d.advanceWithCode(a, c, events.StatusRejected, ByRules, code, reason)
}

// businessDays is from + n business days, or a wait when the calendar does not cover
// it: deciding without it would guess when money is due.
func (d *decider) businessDays(from time.Time, n int) (time.Time, error) {
	at, err := d.rules.Calendar.AddBusinessDays(from, n)
	if err != nil {
		return time.Time{}, wait("the business-day calendar %s does not cover %s; an operator must extend it", d.rules.Calendar.Name(), from.Format(time.DateOnly))
	}
	return at, nil
}

// orderPayoutDays is how long a refund by the order's original payment method takes
// [002]: cards 3–5 business days, PayPal 1–2, others 5–7 (the upper ends).
func orderPayoutDays(method string) int {
	m := strings.ToLower(method)
	switch {
	case strings.Contains(m, "paypal"):
		return 2
	case strings.Contains(m, "card"), strings.Contains(m, "visa"), strings.Contains(m, "mastercard"), strings.Contains(m, "amex"):
		return 5
	}
	return 7
}
