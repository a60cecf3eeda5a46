package redisstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The hand-written top-up encoder writes exactly what encoding/json writes.
func FuzzTopUpsEncodeLikeEncodingJSON(f *testing.F) {
	f.Add("t1", "500.00", "online_banking", "personal", "CMB", 0, "", int64(1763700000))
	f.Add("t<&>\"\\\u2028é", "0.5", "alipay", "", "", 3, "pi_1\x01", int64(-62135596800))
	f.Add("", "-1e-7", "\xff", "b", "c", -1, "sp", int64(253402300799))
	f.Fuzz(func(t *testing.T, id, amount, channel, banking, bank string, payer int, stripe string, at int64) {
		d, err := decimal.NewFromString(amount)
		if err != nil {
			return
		}
		ts := storedTopUps{{ID: id, Amount: d, Channel: channel, Banking: banking, Bank: bank, Payer: payer, StripePaymentID: stripe, ReceivedAt: time.Unix(at, 0).UTC()},
			{ID: "second", Amount: decimal.New(1, 0), Channel: "card", ReceivedAt: time.Unix(0, 1).UTC()}}
		want, wantErr := json.Marshal([]storedTopUp(ts))
		got, gotErr := json.Marshal(ts)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("errors differ: %v and %v", wantErr, gotErr)
		}
		if string(got) != string(want) {
			t.Fatalf("wrote\n%s\nencoding/json writes\\n%s", got, want)
		}
	})
}
