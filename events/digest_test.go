package events

import "testing"

func TestARecordedDigestIsTheWholeDigestOrItsFirst16HexDigits(t *testing.T) {
	const digest = "0123456789abcdef01234567"
	for _, tc := range []struct {
		name     string
		recorded string
		same     bool
	}{
		{"the whole digest", digest, true},
		{"its first 16 hex digits, as a short record keeps them", digest[:16], true},
		{"another digest", "fedcba9876543210fedcba98", false},
		{"the first 16 hex digits of another", "fedcba9876543210", false},
		{"fewer than 16 of its digits: too few to tell contents apart", digest[:15], false},
		{"nothing", "", false},
		{"longer than the digest", digest + "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameDigest(tc.recorded, digest); got != tc.same {
				t.Fatalf("SameDigest(%q, %q) = %v, want %v", tc.recorded, digest, got, tc.same)
			}
		})
	}
}
