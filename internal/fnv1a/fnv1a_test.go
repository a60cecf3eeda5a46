package fnv1a

import (
	"hash/fnv"
	"testing"
)

func TestSum32IsHashFNV32a(t *testing.T) {
	for _, s := range []string{"", "a", "acct-42", "acct-éñ", "billing.topup.received.acct-1"} {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		if got, want := Sum32(s), h.Sum32(); got != want {
			t.Errorf("Sum32(%q) = %d, hash/fnv gives %d", s, got, want)
		}
	}
}
