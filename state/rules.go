package state

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Rules are the configurable parts of the business rules. The zero value is not usable;
// start from DefaultRules.
type Rules struct {
	// ReserveAmount is frozen while the account has pay-as-you-go resources. Seed 001: CNY 100.
	ReserveAmount decimal.Decimal
	// ReserveHold is how long after the last resource release the reserve stays frozen.
	// Seed 001: 24 hours. Counted from the release event's time, never from processing time.
	ReserveHold time.Duration
	// RouteWindows says how long after a top-up it can still be refunded by its original route.
	RouteWindows RouteWindows
	// DefaultCurrency is an account's currency when billing.account.opened does not name one.
	DefaultCurrency string
	// ClockSkew is how far ahead of now an event's time may be. An event from further
	// in the future waits until its time comes (and is dead-lettered if it never does):
	// rules count time from the event, so one dated 2099 would otherwise freeze a reserve
	// forever or jump the first-recharged order.
	ClockSkew time.Duration
	// MaxEventAhead is how far ahead of now an event's time may be at all: further,
	// it is refused at once rather than waited for (a year-3000 event would otherwise
	// wait a day before being dead-lettered). Default 24 hours.
	MaxEventAhead time.Duration
	// EarliestEventTime is the earliest time an event may carry: an event dated
	// before it (1970, the zero time) is a bug upstream, and would put a top-up's
	// original-route window decades in the past. Default 2000-01-01.
	EarliestEventTime time.Time
	// Calendar says which days are business days, for expected completion times
	// counted in business days. Default: mainland China, DefaultCalendar.
	Calendar Calendar
	// DesignatedPayoutTime is how long after approval a withdrawal to a designated
	// account is expected to arrive. Seed 001: 7 to 15 days; default 15 days, so a
	// case reported overdue is really late.
	DesignatedPayoutTime time.Duration
	// SettlementBusinessDays is how long a discontinuation refund waits after the last
	// resource release for delayed billing items. Seed 000: 3 business days.
	SettlementBusinessDays int
	// OrderRefundWindow is how old a purchase may be for an order refund, unless the
	// reason is a special circumstance. Seed 002: 30 days.
	OrderRefundWindow time.Duration
	// PackageRefundsBeforeReview and PackageRefundWindow are the abuse rule of package
	// refunds [003]: more than this many refunds within the window go to review.
	// Default: a fourth refund within 30 days.
	PackageRefundsBeforeReview int
	PackageRefundWindow        time.Duration
	// MaxOrphanReleases bounds the releases of resources not yet created an account
	// keeps while they wait for their creates. A flood of made-up resource ids would
	// otherwise grow the account's document without end.
	MaxOrphanReleases int
}

// DefaultRules are the rules of the seed documents.
func DefaultRules() Rules {
	return Rules{
		ReserveAmount:              decimal.NewFromInt(100),
		ReserveHold:                24 * time.Hour,
		RouteWindows:               DefaultRouteWindows(),
		DefaultCurrency:            "CNY",
		ClockSkew:                  5 * time.Minute,
		MaxEventAhead:              24 * time.Hour,
		EarliestEventTime:          time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		MaxOrphanReleases:          1000,
		Calendar:                   DefaultCalendar(),
		DesignatedPayoutTime:       15 * 24 * time.Hour,
		SettlementBusinessDays:     3,
		OrderRefundWindow:          30 * 24 * time.Hour,
		PackageRefundsBeforeReview: 3,
		PackageRefundWindow:        30 * 24 * time.Hour,
	}
}

// Validate refuses rules that would make money decisions unsafe.
func (r Rules) Validate() error {
	if r.ReserveAmount.IsNegative() {
		return fmt.Errorf("reserve amount %s: must not be negative", r.ReserveAmount)
	}
	if r.ReserveHold <= 0 {
		return fmt.Errorf("reserve hold %s: must be positive", r.ReserveHold)
	}
	if r.ClockSkew < 0 || r.MaxEventAhead < r.ClockSkew {
		return fmt.Errorf("clock skew %s, max event ahead %s: must not be negative, and the skew within the max", r.ClockSkew, r.MaxEventAhead)
	}
	if r.MaxOrphanReleases <= 0 {
		return fmt.Errorf("max orphan releases %d: must be positive", r.MaxOrphanReleases)
	}
	if r.SettlementBusinessDays < 0 || r.OrderRefundWindow <= 0 || r.PackageRefundsBeforeReview < 0 || r.PackageRefundWindow <= 0 {
		return fmt.Errorf("refund rules: settlement days %d, order window %s, package refunds before review %d, package window %s must not be negative",
			r.SettlementBusinessDays, r.OrderRefundWindow, r.PackageRefundsBeforeReview, r.PackageRefundWindow)
	}
	if r.DesignatedPayoutTime <= 0 {
		return fmt.Errorf("designated payout time %s: must be positive", r.DesignatedPayoutTime)
	}
	if r.Calendar.Name() == "" {
		return fmt.Errorf("calendar: none configured")
	}
	if len(r.DefaultCurrency) != 3 {
		return fmt.Errorf("default currency %q: must be a 3-letter code", r.DefaultCurrency)
	}
	return r.RouteWindows.Validate()
}

// RouteWindow is how long a refund by the original payment route stays possible for one
// combination of channel, personal/corporate banking and bank.
type RouteWindow struct {
	Channel string // e.g. "online_banking"
	Banking string // "personal", "corporate", or "" for either
	Bank    string // bank code, e.g. "ICBC"
	Days    int
}

// RouteWindows is the window table of DESIGN.md "Withdrawal by top-up order" (seed 001).
// The most specific matching row wins; a top-up no row matches gets DefaultDays.
type RouteWindows struct {
	DefaultDays int
	Rows        []RouteWindow
}

// DefaultRouteWindows is seed 001's table: most banks 180 days; 30 days for corporate
// online banking at Bank of Jiangsu and Bank of Nanjing and for personal online banking
// at BOC, CIB, ICBC, SPDB, Bank of Nanjing, Bank of Hangzhou, GRCB and Bank of Jiangsu;
// 90 days at China Merchants Bank.
func DefaultRouteWindows() RouteWindows {
	w := RouteWindows{DefaultDays: 180}
	for _, bank := range []string{"JSBANK", "NJCB"} {
		w.Rows = append(w.Rows, RouteWindow{Channel: "online_banking", Banking: "corporate", Bank: bank, Days: 30})
	}
	for _, bank := range []string{"BOC", "CIB", "ICBC", "SPDB", "NJCB", "HZCB", "GRCB", "JSBANK"} {
		w.Rows = append(w.Rows, RouteWindow{Channel: "online_banking", Banking: "personal", Bank: bank, Days: 30})
	}
	w.Rows = append(w.Rows, RouteWindow{Channel: "online_banking", Bank: "CMB", Days: 90})
	return w
}

// Validate refuses a table with a non-positive window.
func (w RouteWindows) Validate() error {
	if w.DefaultDays <= 0 {
		return fmt.Errorf("route windows: default days %d must be positive", w.DefaultDays)
	}
	for _, row := range w.Rows {
		if row.Days <= 0 || row.Channel == "" || row.Bank == "" {
			return fmt.Errorf("route windows: row %+v needs a channel, a bank and positive days", row)
		}
	}
	return nil
}

// Days is the original-route window for a top-up made through channel, banking and bank.
func (w RouteWindows) Days(channel, banking, bank string) int {
	best, bestScore := w.DefaultDays, -1
	for _, row := range w.Rows {
		if row.Channel != channel || row.Bank != bank {
			continue
		}
		score := 0
		switch row.Banking {
		case banking:
			score = 1
		case "":
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = row.Days, score
		}
	}
	return best
}
