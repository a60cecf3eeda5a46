package events

import (
	"strings"
)

// Length limits for strings inside data. They are far above any real value
// and exist so that one event cannot carry an unbounded string into state.
const (
	maxIDLen     = 128  // topup_id, case_id, ...
	maxNameLen   = 256  // holder, payer and payee names
	maxReasonLen = 1024 // free text from people: reasons, failure reasons
	maxShortLen  = 64   // cycle, payment_method, account numbers
	maxBankLen   = 16
	maxEmailLen  = 254 // RFC 5321 path limit
)

// Enumerations of the contract. They are untyped so that they fit the plain
// string fields of the payloads.
const (
	HolderIndividual = "individual" // holder_type
	HolderCompany    = "company"

	AccountActive = "active" // billing.account.status_changed status
	AccountFrozen = "frozen"
	AccountClosed = "closed"

	ChannelAlipay        = "alipay" // top-up channel
	ChannelOnlineBanking = "online_banking"
	ChannelBankCard      = "bank_card"
	ChannelBankTransfer  = "bank_transfer"
	ChannelStripe        = "stripe"
	ChannelPayPal        = "paypal"
	ChannelCard          = "card"

	BankingPersonal  = "personal" // top-up banking
	BankingCorporate = "corporate"

	BillingPayAsYouGo   = "payg" // resource billing_mode
	BillingSubscription = "subscription"

	MethodOriginal   = "original" // withdrawal method
	MethodDesignated = "designated"

	DestinationAlipay   = "alipay" // destination kind
	DestinationBankCard = "bank_card"

	RefundDiscontinuation = "discontinuation" // console.refund.requested kind
	RefundOrder           = "order"
	RefundPackage         = "package"

	DecisionApproved = "approved" // review decision
	DecisionRejected = "rejected"

	PayoutSucceeded = "succeeded" // payout result status
	PayoutFailed    = "failed"

	CaseWithdrawal      = "withdrawal" // case kind, outbound
	CaseDiscontinuation = "discontinuation"
	CaseOrder           = "order"
	CasePackage         = "package"

	StatusInReview                = "in_review" // case status, outbound
	StatusRejected                = "rejected"
	StatusApprovedPendingTransfer = "approved_pending_transfer"
	StatusSucceeded               = "succeeded"
	StatusFailed                  = "failed"
	StatusAwaitingSettlement      = "awaiting_settlement"
	StatusAwaitingInvoiceReversal = "awaiting_invoice_reversal"
	StatusInSecondaryReview       = "in_secondary_review"
	StatusCredited                = "credited"

	RouteOriginal   = "original" // payout route, outbound
	RouteDesignated = "designated"
)

var (
	holderTypes     = []string{HolderIndividual, HolderCompany}
	accountStatuses = []string{AccountActive, AccountFrozen, AccountClosed}
	topupChannels   = []string{ChannelAlipay, ChannelOnlineBanking, ChannelBankCard, ChannelBankTransfer, ChannelStripe, ChannelPayPal, ChannelCard}
	bankings        = []string{BankingPersonal, BankingCorporate}
	billingModes    = []string{BillingPayAsYouGo, BillingSubscription}
	methods         = []string{MethodOriginal, MethodDesignated}
	destKinds       = []string{DestinationAlipay, DestinationBankCard}
	refundKinds     = []string{RefundDiscontinuation, RefundOrder, RefundPackage}
	decisions       = []string{DecisionApproved, DecisionRejected}
	payoutStatuses  = []string{PayoutSucceeded, PayoutFailed}
	caseKinds       = []string{CaseWithdrawal, CaseDiscontinuation, CaseOrder, CasePackage}
	caseStatuses    = []string{
		StatusInReview, StatusRejected, StatusApprovedPendingTransfer, StatusSucceeded, StatusFailed,
		StatusAwaitingSettlement, StatusAwaitingInvoiceReversal, StatusInSecondaryReview, StatusCredited,
	}
	routes = []string{RouteOriginal, RouteDesignated}
)

// The check functions below return the first problem as an *InvalidError,
// or nil. field is the full path, e.g. "data.amount". The "optional" ones
// accept the zero value as "absent".

func checkText(field, v string, max int) error {
	if v == "" {
		return invalid(field, "is required")
	}
	return checkOptionalText(field, v, max)
}

func checkOptionalText(field, v string, max int) error {
	if len(v) > max {
		return invalid(field, "must be at most %d bytes", max)
	}
	return nil
}

func checkID(field, v string) error         { return checkText(field, v, maxIDLen) }
func checkOptionalID(field, v string) error { return checkOptionalText(field, v, maxIDLen) }

func checkEnum(field, v string, allowed []string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	return checkOptionalEnum(field, v, allowed)
}

func checkOptionalEnum(field, v string, allowed []string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return invalid(field, "must be one of %s, got %q", strings.Join(allowed, ", "), excerpt(v))
}

func checkCurrency(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	return checkOptionalCurrency(field, v)
}

func checkOptionalCurrency(field, v string) error {
	if v == "" {
		return nil
	}
	if len(v) != 3 || !isUpperAlnum(v, false) {
		return invalid(field, "must be an ISO 4217 code of 3 upper-case letters, like CNY, got %q", excerpt(v))
	}
	return nil
}

// checkBank accepts any short upper-case code: an unknown bank is not an
// error, it just gets the default original-route window.
func checkBank(field, v string) error {
	if v == "" {
		return nil
	}
	if len(v) > maxBankLen || !isUpperAlnum(v, true) {
		return invalid(field, "must be a bank code of at most %d upper-case letters and digits, like CMB, got %q", maxBankLen, excerpt(v))
	}
	return nil
}

func checkEmail(field, v string) error {
	if v == "" {
		return nil
	}
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(v, " \t\r\n<>") || strings.Contains(domain, "@") || len(v) > maxEmailLen {
		return invalid(field, "must be an e-mail address like a@example.com")
	}
	return nil
}

func isUpperAlnum(s string, digits bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || digits && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// checkAmount applies the rules every amount shares: cents at most, not
// negative, not beyond MaxAmount.
func checkAmount(field string, a Amount) error {
	if !a.Equal(a.Truncate(maxFractionDigits)) {
		return invalid(field, "must have at most %d fraction digits", maxFractionDigits)
	}
	if a.IsNegative() {
		return invalid(field, "must not be negative")
	}
	if a.GreaterThan(maxAmount) {
		return invalid(field, "must not exceed %s", MaxAmount)
	}
	return nil
}

// checkPositive is for amounts that bring or move money: zero is meaningless there.
func checkPositive(field string, a Amount) error {
	if err := checkAmount(field, a); err != nil {
		return err
	}
	if !a.IsPositive() {
		return invalid(field, "must be greater than zero")
	}
	return nil
}

func checkOptionalPositive(field string, a *Amount) error {
	if a == nil {
		return nil
	}
	return checkPositive(field, *a)
}

func checkOptionalAmount(field string, a *Amount) error {
	if a == nil {
		return nil
	}
	return checkAmount(field, *a)
}

// firstError returns the first non-nil error; it lets Validate read as a list of rules.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
