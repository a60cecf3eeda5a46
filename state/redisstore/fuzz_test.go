package redisstore_test

import (
	"maps"
	"os"
	"testing"

	"github.com/payinfra/refunds/state/redisstore"
)

// FuzzAccountDecoder feeds arbitrary bytes to the decoder of the stored account's
// documents (the first layout's whole document, and the "c" field today): it must never
// panic, and what it reads must write field by field and read back the same.
func FuzzAccountDecoder(f *testing.F) {
	if golden, err := os.ReadFile("testdata/account-written-by-v1.json"); err == nil {
		f.Add(golden)
	}
	for _, seed := range []string{
		`{"id":"a","tu":[{"id":"t","a":"1","ch":"alipay","p":7,"at":"2026-01-01T00:00:00Z"}],"py":[]}`,
		`{"id":"a","cs":{"w1":{"k":"withdrawal","s":"in_review","a":"-5","o":"2026-01-01T00:00:00Z","h":[{"s":"x","at":"2026-01-01T00:00:00Z","by":"rules"}]}}}`,
		`{"id":"a","po":{"":"1e400"},"cr":"NaN"}`, `{"cn":"1e9999999999"}`, `[]`, `{"tr":{"x":null}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		a, err := redisstore.DecodeDocumentForTest(doc)
		if err != nil {
			return
		}
		first, err := redisstore.EncodeAccountForTest(a)
		if err != nil {
			t.Fatalf("a decoded account does not encode: %v", err)
		}
		back, err := redisstore.DecodeAccountForTest(first)
		if err != nil {
			t.Fatalf("an encoded account does not decode: %v\n%v", err, first)
		}
		second, _ := redisstore.EncodeAccountForTest(back)
		if !maps.Equal(first, second) {
			t.Fatalf("writing and reading changed the account:\n%v\n%v", first, second)
		}
	})
}
