package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// maxTenTopUpAccountBytes is the budget for an account with 10 top-ups (issue: ≤ 2 KiB).
const maxTenTopUpAccountBytes = 2048

// busyAccount is a realistic account with n top-ups: long names, a bank, a Stripe id,
// a transfer, an open bill and credit note, an unsettled cycle and two resources.
func busyAccount(n int) state.Account {
	a := state.NewAccount("acct-0123456789")
	a.Opened, a.Verified, a.Currency = true, true, "CNY"
	a.HolderType, a.HolderName = "company", "Hangzhou Example Technology Co., Ltd."
	at := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := range n {
		a.TopUps = append(a.TopUps, state.TopUp{
			ID: fmt.Sprintf("topup-2026-%06d", i), Amount: decimal.RequireFromString("12345.67"),
			Channel: "online_banking", Banking: "corporate", Bank: "JSBANK", PayerType: "company",
			PayerName: "Hangzhou Example Technology Co., Ltd.", ReceivedAt: at.Add(time.Duration(i) * 24 * time.Hour),
		})
	}
	a.Consumed = decimal.RequireFromString("45678.90")
	a.Transfers = map[string]state.Transfer{"tr-0001": {Received: decimal.RequireFromString("500.00")}}
	a.Bills = map[string]state.Bill{"bill-2026-10": {Amount: decimal.RequireFromString("300.00")}}
	a.CreditNotes = map[string]state.CreditNote{"cn-0001": {Amount: decimal.RequireFromString("200.00")}}
	a.Cycles = map[string]state.Cycle{"2026-11": {Accrued: decimal.RequireFromString("200.00")}}
	a.Resources = map[string]state.Resource{"ecs-i-0001": {Created: true, PayAsYouGo: true}, "ecs-i-0002": {Created: true, PayAsYouGo: true}}
	return a
}

func TestAnAccountWithTenTopUpsIsStoredInAtMost2KiB(t *testing.T) {
	fields, err := redisstore.EncodeAccountForTest(busyAccount(10))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("account with 10 top-ups: %d bytes in %d fields", storedBytes(fields), len(fields))
	if n := storedBytes(fields); n > maxTenTopUpAccountBytes {
		t.Fatalf("account with 10 top-ups is %d bytes, over the %d budget:\n%v", n, maxTenTopUpAccountBytes, fields)
	}
}

// storedBytes is what an account's hash holds: its fields' names and values.
func storedBytes(fields map[string]string) int {
	n := 0
	for f, v := range fields {
		n += len(f) + len(v)
	}
	return n
}

// BenchmarkAccountSize reports what one account costs in Redis (MEMORY USAGE of its
// hash, which includes Redis's own overhead) for 1, 10 and 100 top-ups, and the
// document's size in bytes. Run: go test -run '^$' -bench AccountSize ./state/redisstore/
func BenchmarkAccountSize(b *testing.B) {
	rdb := testenv.StartRedis(b).Client(b)
	store := testenv.PreparedStore(b, rdb)
	ctx := context.Background()
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("topups=%d", n), func(b *testing.B) {
			a := busyAccount(n)
			a.ID = fmt.Sprintf("acct-size-%d", n)
			fields, _ := redisstore.EncodeAccountForTest(a)
			ref := state.EventRef{AccountID: a.ID, EventID: fmt.Sprintf("size-%d", n)}
			if _, err := store.Commit(ctx, []state.Step{{Event: ref, Account: &a}}); err != nil {
				b.Fatal(err)
			}
			var usage int64
			for b.Loop() {
				var err error
				usage, err = rdb.MemoryUsage(ctx, redisstore.AccountKeyForTest(a.ID)).Result()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(storedBytes(fields)), "doc-bytes")
			b.ReportMetric(float64(usage), "redis-bytes")
		})
	}
}

// withdrawal is a realistic withdrawal case: a designated bank card, a history of
// three moves with reasons.
func withdrawal(id, status string, at time.Time) state.Case {
	expected := at.Add(15 * 24 * time.Hour)
	c := state.Case{
		ID: id, Kind: events.CaseWithdrawal, Status: status, Amount: decimal.RequireFromString("1234.56"),
		TopupID: "topup-2026-000001", Route: events.RouteDesignated, OpenedAt: at, ExpectedBy: &expected, PayoutID: "po-" + id,
		Destination: &events.Destination{Kind: events.DestinationBankCard, AccountNo: "6222020200012341234", PayeeName: "Hangzhou Example Technology Co., Ltd.",
			Bank: "ICBC", Branch: "Hangzhou Xihu Sub-branch", ProvinceCity: "Zhejiang Hangzhou"},
	}
	for i, s := range []string{events.StatusInReview, events.StatusApprovedPendingTransfer, status} {
		c.History = append(c.History, state.CaseEntry{Status: s, At: at.Add(time.Duration(i) * time.Hour), By: state.ByReviewer, Reason: "documents checked by finance"})
	}
	return c
}

// BenchmarkAccountWithCases reports what an account with 10 top-ups, 3 open cases and
// 100 ended ones costs in Redis: the account's hash, which every event reads and
// writes, alone and once the cases ended (as many as keep it small are kept in it),
// and the hash of the ended cases kept apart. Run:
// go test -run '^$' -bench AccountWithCases -benchtime 1x ./state/redisstore/
func BenchmarkAccountWithCases(b *testing.B) {
	rdb := testenv.StartRedis(b).Client(b)
	store := testenv.PreparedStore(b, rdb)
	ctx := context.Background()
	a := busyAccount(10)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a.Cases = map[string]state.Case{}
	for i := range 3 {
		c := withdrawal(fmt.Sprintf("wd-open-%03d", i), events.StatusApprovedPendingTransfer, at)
		c.History = c.History[:2]
		a.Cases[c.ID] = c
	}
	var ended []state.Case
	for i := range 100 {
		ended = append(ended, withdrawal(fmt.Sprintf("wd-done-%03d", i), events.StatusSucceeded, at.Add(time.Duration(i)*time.Hour)))
	}
	fields, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		b.Fatal(err)
	}
	opened := state.Step{Event: state.EventRef{AccountID: a.ID, EventID: "size-open"}, Account: &a}
	if res, err := store.Commit(ctx, []state.Step{opened}); err != nil || res[0].Outcome != state.Applied {
		b.Fatalf("commit: %v %v", res, err)
	}
	docAlone, err := rdb.MemoryUsage(ctx, redisstore.AccountKeyForTest(a.ID)).Result()
	if err != nil {
		b.Fatal(err)
	}
	step := state.Step{Event: state.EventRef{AccountID: a.ID, EventID: "size-cases"}, ExpectedVersion: opened.NextVersion(), Account: &a, ClosedCases: ended}
	if res, err := store.Commit(ctx, []state.Step{step}); err != nil || res[0].Outcome != state.Applied {
		b.Fatalf("commit: %v %v", res, err)
	}
	var docUsage, endedUsage int64
	for b.Loop() {
		docUsage, err = rdb.MemoryUsage(ctx, redisstore.AccountKeyForTest(a.ID)).Result()
		if err != nil {
			b.Fatal(err)
		}
		endedUsage, err = rdb.MemoryUsage(ctx, redisstore.ClosedCasesKeyForTest(a.ID), 0).Result()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(storedBytes(fields)), "doc-bytes")
	b.ReportMetric(float64(docAlone), "doc-redis-bytes")
	b.ReportMetric(float64(docUsage), "doc-with-ended-redis-bytes")
	b.ReportMetric(float64(endedUsage), "ended-apart-redis-bytes")
	b.ReportMetric(float64(docUsage-docAlone+endedUsage)/100, "bytes/ended-case")
}
