package redisstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/state"
)

// The "c" field is written by hand; whatever the account holds, the bytes must be
// those encoding/json writes, or nothing (and then json.Marshal writes them): a step
// compares them with what Redis holds to leave an unchanged field alone.
func FuzzCoreEncodesAsEncodingJSON(f *testing.F) {
	f.Add("acct-42", "individual", "Li Wei", "CNY", "active", "li@example.com", uint8(0b111), int64(12050), int32(-2), int64(1795453137868000000), int32(0), uint8(2))
	f.Add("acct-7", "company", "李伟 <Co> & \"Sons\"", "", "", "", uint8(0), int64(0), int32(0), int64(0), int32(8*3600), uint8(0))
	f.Add("", "", "\xff\u2028", "USD", "frozen", "", uint8(0xff), int64(-1), int32(30), int64(1<<63-1), int32(100000), uint8(5))
	f.Fuzz(func(t *testing.T, id, holderType, holderName, currency, status, email string, flags uint8, coefficient int64, exponent int32, unixNano int64, zoneSeconds int32, refunds uint8) {
		at := time.Unix(0, unixNano).UTC()
		if zoneSeconds != 0 {
			at = at.In(time.FixedZone("", int(zoneSeconds)))
		}
		amount := decimal.New(coefficient, exponent%40)
		a := state.Account{ID: id, HolderType: holderType, HolderName: holderName, Currency: currency, Status: status, Email: email,
			Opened: flags&1 != 0, Verified: flags&2 != 0, TermsViolated: flags&4 != 0}
		if flags&8 != 0 {
			a.Consumed, a.VouchersGranted = amount, amount.Neg()
		}
		if flags&16 != 0 {
			a.VouchersUsed, a.Credited = amount, amount.Add(decimal.New(1, -2))
		}
		if flags&32 != 0 {
			a.LastReleaseAt, a.ReserveReleasedFor = &at, &at
		}
		if flags&64 != 0 {
			a.Discontinuation = &state.Discontinuation{RequestID: email, RequestedAt: at}
			if flags&128 != 0 {
				released := at.Add(time.Hour)
				a.Discontinuation.ReleasedAt = &released
			}
		}
		for i := range refunds % 4 {
			a.PackageRefunds = append(a.PackageRefunds, at.Add(time.Duration(i)*time.Minute))
		}
		want, wantErr := marshalCore(&a)
		got, ok := appendCore(nil, &a)
		if !ok {
			return // marshalCore's to write, error and all
		}
		if wantErr != nil {
			t.Fatalf("appendCore wrote %s where json.Marshal fails: %v", got, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendCore wrote\n%s\njson.Marshal writes\n%s", got, want)
		}
	})
}

func TestTheCoreOfAnOrdinaryAccountIsWrittenByHand(t *testing.T) {
	released := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	a := state.Account{ID: "acct-42", Opened: true, HolderType: "individual", HolderName: "李伟", Verified: true, Currency: "CNY",
		Consumed: decimal.RequireFromString("120.50"), LastReleaseAt: &released, Email: "li@example.com"}
	got, ok := appendCore(nil, &a)
	if !ok {
		t.Fatal("an ordinary account took the slow way")
	}
	want, err := marshalCore(&a)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s (%v)", got, want, err)
	}
}

// BenchmarkEncodeCore is what writing the "c" field costs each step, for the accounts
// the end-to-end bench's workload ends with. Run:
// go test -run '^$' -bench EncodeCore -benchmem -count 6 ./state/redisstore/
func BenchmarkEncodeCore(b *testing.B) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := workload.Generate(workload.Options{Accounts: 200, Seed: 7, Start: start})
	rules := state.DefaultRules()
	var accounts []state.Account
	for _, id := range w.Accounts {
		accounts = append(accounts, state.Rebuild(id, w.History[id], rules, start.Add(time.Hour)).Account)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range accounts {
			if _, err := encodeCore(&accounts[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(accounts)), "ns/account")
}
