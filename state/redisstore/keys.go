package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/fnv1a"
)

// Partitions is the number of hash-tag partitions accounts are spread over. Every key
// one atomic step touches (the account, the event's idempotency record, the outbox
// stream) carries the same tag, {pNN}, so each step runs on one Redis Cluster slot.
// 16 partitions spread the load over up to 16 cluster shards while keeping the outbox
// relay's poll to 16 streams. Changing it renames every key: it is fixed per deployment.
const Partitions = 16

// Key layout (NN = Partition(accountID), two digits):
//
//	rf:{pNN}:acct:<account id>  hash: v = version (optimistic concurrency), c = the
//	                            account's own fields as JSON, a field per entry of its
//	                            collections (see fields.go), and ce:<case id> -> an
//	                            ended case, deflated, which is no part of the document
//	                            (see apply.lua's keepEnded); s = the whole account as
//	                            JSON in an earlier layout
//	rf:{pNN}:ids:<account id>  hash: the account's idempotency records, each kept for
//	                            the idempotency retention (see apply.lua):
//	                            e<8 bytes of SHA-256(event id)> -> the event's content
//	                            digest and the unix hour it was written (see eventField),
//	                            <fact field> -> the fact's digest and hour, for a fact (a
//	                            consumption, a bill...) already counted, whatever the
//	                            event id it came with (see factField), and ~ -> when the
//	                            records were last trimmed (unix s). A record is 11 bytes,
//	                            short; or as written before rf:short-records-since, 15
//	                            bytes, compact, or "<digest in hex>:<hour>", text, as
//	                            written before rf:compact-records-since (see apply.lua's
//	                            newRecord)
//	rf:compact-records-since    unix s when a store that writes compact records first
//	rf:short-records-since      started on a database that held keys ("0": an empty
//	                            one); a day later it writes them (VersionOverlap)
//	rf:idempotency-hashes-since unix s when this store first kept records in the ids
//	                            hashes; "0" when it never had the older layout's keys:
//	rf:{pNN}:seen:<account>:<event id> and rf:{pNN}:fact:<account>:<type>:<business
//	                            id>, strings expiring after the retention. They are
//	                            read and written too until a retention has passed.
//	rf:{pNN}:cases:<account id> hash: the account's ended cases, case id -> case JSON,
//	                            as versions before kept them all, and this one keeps
//	                            those too large for the account's own hash ("ce:"
//	                            fields, see apply.lua) and those of the day of overlap
//	rf:{pNN}:case-index:<b>     hash: case id -> its account id, for the cases whose id
//	                            hashes to partition NN and bucket b (see caseIndexKey)
//	rf:{pNN}:case:<case id>     string: the case's account id, as the version before
//	                            indexed cases (NN from the case id); read, not written
//	rf:{pNN}:holder-overdue:<h> set: accounts with an overdue amount whose holder name
//	                            hashes to h (SHA-256, 24 hex digits; NN from h)
//	rf:{pNN}:outbox             stream of events to publish: id, subject, body
//	rf:{pNN}:outbox:parked      stream of events JetStream kept refusing, for an operator
//	rf:{pNN}:reserve:due        sorted set: account id -> its next deadline (unix ms), the
//	                            earliest of its timers of every kind (state.Timer), and
//	                            its kind in sixteenths of a ms (apply.lua's kindInScore)
//	rf:{pNN}:reserve:claimed    sorted set: account id -> lease expiry of its claim, and
//	                            the kind the same way
//	rf:{pNN}:timers:kind        hash: account id -> its deadline's kind, as versions
//	                            before kept it; written for a day after an upgrade
//	rf:{pNN}:timers:count       hash: kind -> pending deadlines of that kind
//	rf:timer-kinds-in-scores-since unix s when a store keeping kinds in scores first
//	                            started on a database that held keys ("0": an empty one)
//	rf:ended-cases-in-accounts-since the same for a store keeping ended cases in their
//	                            account's hash
//
// The timer sets keep the names they had when the reserve countdown was the only
// timer, so a store written by that version reads on unchanged.
//
// The idempotency record is keyed by the CloudEvents id, as the contract says processing
// is idempotent on id, within the event's account: two sources reusing an id for two
// accounts can never make one account's event a duplicate of the other's.
const keyPrefix = "rf:"

// Partition is the partition an account's keys live in: FNV-1a (32 bits) of the id
// (internal/fnv1a, which allocates nothing), modulo Partitions.
func Partition(accountID string) int { return int(fnv1a.Sum32(accountID) % Partitions) }

// tags are the partitions' key prefixes, "rf:{pNN}:", formatted once.
var tags = func() (t [Partitions]string) {
	for p := range t {
		t[p] = fmt.Sprintf("%s{p%02d}:", keyPrefix, p)
	}
	return t
}()

func tag(partition int) string { return tags[partition] }

func accountKey(accountID string) string {
	return tag(Partition(accountID)) + "acct:" + accountID
}

// idsKey holds an account's idempotency records: one small hash (a listpack) per
// account instead of two expiring keys per event, about a quarter of the memory.
func idsKey(accountID string) string {
	return tag(Partition(accountID)) + "ids:" + accountID
}

// eventField names an event's record in its account's ids hash: "e" and the first 8
// bytes of the id's SHA-256, 9 bytes whatever the id (a UUID is 36 characters, and the
// records are most of an account's memory). Two ids of one account that shared a
// field (odds of 2^-64 a pair) would make the second a conflict, dead-lettered with
// its reason, unless its content were the same too.
func eventField(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "e" + string(sum[:8])
}

// factField names a fact's record ("<type>:<business id>", events.Event.FactID) in its
// account's ids hash: a letter for the type where one is assigned, "f:" and the whole
// id otherwise; "" for no fact. No letter is "e", so a fact's field never takes an
// event's.
//
// Fields are stored for a retention, so the table only grows: a letter once used keeps
// its type, and a type whose facts were ever stored under "f:" gets no letter (its
// records would not be found for a retention, and its facts could count twice).
func factField(factID string) string {
	if factID == "" {
		return ""
	}
	typ, id, ok := strings.Cut(factID, ":")
	if code, known := factTypeLetters[events.Type(typ)]; ok && known {
		return code + ":" + id
	}
	return "f:" + factID
}

var factTypeLetters = map[events.Type]string{
	events.ConsumptionRecorded: "c",
	events.VoucherGranted:      "v",
	events.UsageAccrued:        "u",
	events.TransferReceived:    "t",
	events.BillIssued:          "b",
	events.CreditNoteIssued:    "n",
}

// idsSinceKey says since when the store keeps its records in the ids hashes (see the
// key layout above). It has no hash tag: it is read once, on Prepare, outside any step.
const idsSinceKey = keyPrefix + "idempotency-hashes-since"

// compactRecordsSinceKey says since when the store knows compact records (see
// apply.lua's newRecord): unix s of its first start, "0" when the database was empty
// then. Like idsSinceKey, it has no hash tag.
const compactRecordsSinceKey = keyPrefix + "compact-records-since"

// shortRecordsSinceKey is the same for short records.
const shortRecordsSinceKey = keyPrefix + "short-records-since"

// kindsInScoresSinceKey is the same for the kinds of deadlines kept in their scores
// alone (apply.lua's kindInScore): until a day after it, they are kept in
// timerKindsKey too, which the version before reads.
const kindsInScoresSinceKey = keyPrefix + "timer-kinds-in-scores-since"

// endedCasesInAccountsSinceKey is the same for ended cases kept in their account's
// own hash: until a day after it, they are kept apart in closedCasesKey alone, as the
// version before, which cannot read an account holding them, keeps them.
const endedCasesInAccountsSinceKey = keyPrefix + "ended-cases-in-accounts-since"

// seenKey and factKey are the older layout's records, one key each.
func seenKey(accountID, eventID string) string {
	return tag(Partition(accountID)) + "seen:" + accountID + ":" + eventID
}

func factKey(accountID, factID string) string {
	return tag(Partition(accountID)) + "fact:" + accountID + ":" + factID
}

// closedCasesKey holds an account's ended cases, out of its document: a hash of case id
// to case JSON, in the account's slot so the step that ends a case writes it.
func closedCasesKey(accountID string) string {
	return tag(Partition(accountID)) + "cases:" + accountID
}

// holderOverdueKey is the set of accounts with an overdue amount whose holder has this
// name. It lives in the partition of the name's hash, so it is written beside the
// accounts' steps rather than in them (see Store.Commit).
func holderOverdueKey(holderName string) string {
	sum := sha256.Sum256([]byte(holderName))
	h := hex.EncodeToString(sum[:12])
	return tag(Partition(h)) + "holder-overdue:" + h
}

// caseIndexKey is the hash that maps a case id to its account. It lives in the case
// id's own partition, not the account's, so it is written beside the account's atomic
// step rather than in it (see Store.Commit); a reader checks the account really holds
// the case.
//
// The index is spread over caseIndexBuckets hashes per partition, not a key per case:
// a small hash is a listpack, where a case costs its two ids and a few bytes, and a
// key of its own cost about 120 B.
func caseIndexKey(caseID string) string {
	h := fnv1a.Sum32(caseID)
	return tag(int(h%Partitions)) + "case-index:" + strconv.Itoa(int(h/Partitions%caseIndexBuckets))
}

// caseIndexBuckets is how many hashes of each partition hold the case index: 1,024
// in all. Each stays a listpack (up to 512 fields, as Redis is built) to about half a
// million cases, and costs about 100 B while nearly empty. A case or account id longer
// than hash-max-listpack-value (the 512 the deployment sets; Redis's default is 64)
// makes its bucket a hash table for good: more memory, nothing else. Changing it moves
// every case's entry: it is fixed per deployment.
const caseIndexBuckets = 64

// olderCaseIndexKey is where the version before indexed a case: a string key holding
// its account id. Those keys are read still, and never written.
func olderCaseIndexKey(caseID string) string {
	return tag(Partition(caseID)) + "case:" + caseID
}

func outboxKey(partition int) string { return tag(partition) + "outbox" }

func parkedKey(partition int) string { return tag(partition) + "outbox:parked" }

func timersDueKey(partition int) string     { return tag(partition) + "reserve:due" }
func timerKindsKey(partition int) string    { return tag(partition) + "timers:kind" }
func timerCountsKey(partition int) string   { return tag(partition) + "timers:count" }
func caseCountsKey(partition int) string    { return tag(partition) + "cases:count" }
func timersClaimedKey(partition int) string { return tag(partition) + "reserve:claimed" }
