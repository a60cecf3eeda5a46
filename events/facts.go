package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// A fact is something upstream announces once under its own business id: a
// consumption, a voucher, a transfer, a bill. Announced again under another event id
// (a replay, a retry by a publisher that made up a new id) it is still the same fact,
// and must not count twice. Events that refer to a fact without being one (a bill
// payment, a recall, a resolution: several may share the id) have no fact id.

// FactID is the business id of the fact an event announces, unique per account and
// type, or "" when the event does not announce one.
//
// FactDigest fingerprints what the event says about its fact, so that the same id
// announced with other data is told apart from a plain repeat.
func (e Event) FactID() string {
	var id string
	switch p := e.Payload.(type) {
	case *ConsumptionRecordedData:
		id = p.ConsumptionID
	case *VoucherGrantedData:
		id = p.VoucherID
	case *UsageAccruedData:
		id = p.UsageID
	case *TransferReceivedData:
		id = p.TransferID
	case *BillIssuedData:
		id = p.BillID
	case *CreditNoteData:
		if e.Type != CreditNoteIssued {
			return "" // a resolution refers to the credit note; several may
		}
		id = p.CreditNoteID
	default:
		// Resources are not facts: a resource id may be used again after its release,
		// and a second create must then freeze the reserve again.
		return ""
	}
	return string(e.Type) + ":" + id
}

// FactDigest is a fingerprint of the event's data, independent of its JSON layout.
func (e Event) FactDigest() string {
	_, fact := e.Digests()
	return fact
}

// Digests fingerprints the event twice, encoding its payload once for both.
//
// content covers what the event says: its type, account, time and data, independent of
// their JSON layout and of the event's id and source. It goes with the event's
// idempotency record, so an id reused for other content is a conflict, not a
// duplicate. The source is left out on purpose: the same event replayed by another
// publisher (a backfill tool) is still the same event.
//
// fact is FactDigest: the data alone.
func (e Event) Digests() (content, fact string) {
	var canonical []byte
	var ok bool
	if fastReading {
		canonical, ok = appendPlainPayload(make([]byte, 0, 256), e.Payload)
	}
	if !ok {
		var err error
		if canonical, err = json.Marshal(e.Payload); err != nil {
			return "", ""
		}
	}
	factSum := sha256.Sum256(canonical)
	h := sha256.New()
	h.Write([]byte(string(e.Type) + "\x00" + e.Subject + "\x00" + e.Time.UTC().Format(time.RFC3339Nano) + "\x00"))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil)[:12]), hex.EncodeToString(factSum[:12])
}

// shortDigestLen is the fewest hex digits of a content digest an idempotency record
// keeps: its first 64 bits.
const shortDigestLen = 16

// SameDigest reports whether recorded, a content digest as an idempotency record keeps
// it, is digest's: the whole digest, or its first 16 hex digits (a short record). Two
// different contents sharing their first 64 bits, at odds of 2^-64, would make a
// reused id pass for a redelivery.
func SameDigest(recorded, digest string) bool {
	if len(recorded) < shortDigestLen || len(recorded) > len(digest) {
		return recorded == digest
	}
	return digest[:len(recorded)] == recorded
}

// CaseRef is the withdrawal or refund case the event names, or "": a request names
// the case it opens (so a repeat finds it), a decision or a payout result the case it
// answers.
func (e Event) CaseRef() string {
	switch p := e.Payload.(type) {
	case *WithdrawalRequestedData:
		return p.WithdrawalID
	case *RefundRequestedData:
		return p.RefundID
	case *RefundAppealedData:
		return p.RefundID
	case *CaseDecidedData:
		return p.CaseID
	case *PayoutReportedData:
		return p.CaseID
	}
	return ""
}
