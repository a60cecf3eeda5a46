package redisstore

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"testing"

	"github.com/payinfra/refunds/events"
)

var hashTag = regexp.MustCompile(`\{[^}]*\}`)

func TestEveryKeyOfOneStepSharesAHashTag(t *testing.T) {
	for _, id := range []string{"acct-42", "a", "ACCT_9", "x-very-long-account-id-0123456789012345678901234567890123456789"} {
		keys := []string{accountKey(id), idsKey(id), seenKey(id, "evt-1"), factKey(id, "billing.bill.issued:b-1"), closedCasesKey(id), outboxKey(Partition(id)), timersDueKey(Partition(id)), timersClaimedKey(Partition(id))}
		tag := hashTag.FindString(keys[0])
		if tag == "" {
			t.Fatalf("%s has no hash tag", keys[0])
		}
		for _, k := range keys[1:] {
			if got := hashTag.FindString(k); got != tag {
				t.Errorf("account %s: key %s has tag %q, want %q", id, k, got, tag)
			}
		}
	}
}

func TestAccountsSpreadOverAllPartitions(t *testing.T) {
	seen := make(map[int]bool)
	for i := 0; i < 1000; i++ {
		seen[Partition("acct-"+string(rune('a'+i%26))+string(rune('0'+i%10))+string(rune('A'+i/26%26)))] = true
	}
	if len(seen) != Partitions {
		t.Errorf("1000 accounts fell in %d of %d partitions", len(seen), Partitions)
	}
}

// Partition names where every key of a deployment lives: the inline hash must stay
// FNV-1a as hash/fnv computes it, or a new version would look for accounts in the
// wrong partition.
func TestPartitionIsFNV1aOfTheAccountID(t *testing.T) {
	for _, id := range []string{"", "a", "acct-42", "ACCT_9", "账户-7", "x-very-long-account-id-0123456789012345678901234567890123456789"} {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		if got, want := Partition(id), int(h.Sum32()%Partitions); got != want {
			t.Errorf("Partition(%q) = %d, want %d", id, got, want)
		}
		if got, want := tag(Partition(id)), fmt.Sprintf("rf:{p%02d}:", Partition(id)); got != want {
			t.Errorf("tag = %q, want %q", got, want)
		}
	}
}

func TestEachFactTypeHasItsOwnFieldPrefixAndNoneIsAnEvents(t *testing.T) {
	used := map[string]events.Type{"e": "an event's record", "f": "a fact of a type without a letter", "~": "the trim time"}
	for typ, letter := range factTypeLetters {
		if other, taken := used[letter]; taken {
			t.Errorf("%s and %s share the letter %q", typ, other, letter)
		}
		used[letter] = typ
	}
	for _, c := range []struct{ fact, field string }{
		{"billing.consumption.recorded:c-1", "c:c-1"},
		{"billing.bill.issued:b:2026-11", "b:b:2026-11"}, // only the type is cut off
		{"billing.someday.new:x-1", "f:billing.someday.new:x-1"},
		{"", ""}, // no fact
	} {
		if got := factField(c.fact); got != c.field {
			t.Errorf("factField(%q) = %q, want %q", c.fact, got, c.field)
		}
	}
}

// BenchmarkEventField is what naming an event's record costs, twice per event (Load and
// the step).
func BenchmarkEventField(b *testing.B) {
	for b.Loop() {
		_ = eventField("0b4f3c1e-7d2a-4e8f-9c61-3f5a2b7d9e10")
	}
}
