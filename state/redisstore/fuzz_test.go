package redisstore_test

import (
	"os"
	"testing"

	"github.com/payinfra/refunds/state/redisstore"
)

// FuzzAccountDecoder feeds arbitrary bytes to the stored account's decoder: it must
// never panic, and what it reads must write and read back to the same document.
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
		a, err := redisstore.DecodeAccountForTest(doc)
		if err != nil {
			return
		}
		first, err := redisstore.EncodeAccountForTest(a)
		if err != nil {
			t.Fatalf("a decoded account does not encode: %v", err)
		}
		back, err := redisstore.DecodeAccountForTest(first)
		if err != nil {
			t.Fatalf("an encoded account does not decode: %v\n%s", err, first)
		}
		second, _ := redisstore.EncodeAccountForTest(back)
		if string(first) != string(second) {
			t.Fatalf("writing and reading changed the document:\n%s\n%s", first, second)
		}
	})
}
