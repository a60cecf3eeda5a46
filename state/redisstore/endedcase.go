package redisstore

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	kflate "github.com/klauspost/compress/flate"

	"github.com/payinfra/refunds/state"
)

// An ended case is kept for as long as its account: for the read API, and for a late
// result or a repeated request that names it. It is never changed again, and read
// rarely, so it is stored deflated: a byte saying how (endedCaseDeflatedV1), then its
// JSON deflated with endedCaseDictionary. A case of a few hundred bytes of JSON
// shrinks to about a third, which also keeps the account's hash of ended cases a
// listpack (values up to 512 bytes) where a designated-account withdrawal's history
// took it past that. Cases written before are JSON, which starts with '{', and read as
// they are. Open cases stay JSON in the account's hash: they are written and read
// with it.
//
// An earlier version reads JSON only. So while instances of it may still run, or the
// deployment may be rolled back to it (the window in which the older layout's
// idempotency records are kept too, see Store.legacyUntil), ended cases are written
// as JSON; deflated only after.

// endedCaseDeflatedV1 marks a case deflated with endedCaseDictionary. The dictionary
// is part of the stored format: a different one needs a new mark.
const endedCaseDeflatedV1 = 0x01

// caseDeflateLevel is klauspost/compress's level 6, its best that resets in constant
// time. On the ended cases of endedCases it writes as few bytes as the standard
// library's best compression did (66-112 against 69-115), in under half the time.
const caseDeflateLevel = 6

// endedCaseDictionary primes the compressor with what ended cases have in common:
// their field names, kinds, statuses, actors and the engine's own reasons. Deflate
// codes a repeat of the dictionary as a back-reference, so a case is mostly its ids,
// amounts and times. Only the engine's own strings and the stored form's names are in
// it, nothing of one workload's ids. The likeliest strings come last, nearest the
// data.
const endedCaseDictionary = `{"k":"order","s":"in_secondary_review","a":"","r":"","d":{"kind":"bank_card","account_no":"","payee_name":"","bank":"","branch":"","province_city":"","payee_type":"company"},"sb":"","tb":true,"m":"card","ap":true,"iv":"","x":true,"c":"` +
	`{"k":"package","s":"credited","h":[{"s":"credited","at":"","by":"rules","r":"package balance credited to the account"}]}` +
	`{"k":"discontinuation","s":"awaiting_invoice_reversal","h":[{"s":"awaiting_settlement","at":"","by":"rules","r":"waiting 3 business days after the last resource release for delayed billing items"},{"s":"awaiting_invoice_reversal","at":"","by":"timer","r":"the recharge was invoiced: the red-letter reversal must be confirmed"}]}` +
	`{"s":"failed","at":"","by":"payout","r":"payout failed: "},{"s":"failed","at":"","by":"payout","r":"payout reversed after success: "}; credited to the account balance"}` +
	`{"k":"withdrawal","s":"rejected","a":"","t":"t1","r":"designated","d":{"kind":"alipay","account_no":"","payee_name":""},"o":"2026-","h":[{"s":"in_review","at":"2026-","by":"rules","r":"review: designated receiving account"},{"s":"rejected","at":"2026-","by":"reviewer","r":"rejected by "}]}` +
	`{"k":"withdrawal","s":"succeeded","a":"","t":"","r":"original","o":"2026-11-23T00:00:00Z","e":"2026-11-23T00:00:00Z","p":"","h":[{"s":"approved_pending_transfer","at":"2026-11-23T00:00:00Z","by":"reviewer","r":"approved by "},{"s":"approved_pending_transfer","at":"2026-11-23T00:00:00Z","by":"rules","r":"original payment route"},{"s":"succeeded","at":"2026-11-23T00:00:00Z","by":"payout","r":"payout succeeded"}]}`

// The compressor is klauspost/compress's deflate at caseDeflateLevel: what it writes is
// plain deflate, read by the standard library's inflater like every case written
// before it. The standard library's compressor clears about 650 KiB of tables on every
// Reset (at each level that takes a preset dictionary), which was most of the 30 µs a
// case took to deflate (BenchmarkEncodeEndedCase); klauspost's levels 1 to 6 reset by
// moving an offset, so a case costs what priming it with the dictionary and deflating
// its JSON cost. zstd (klauspost/compress, with a raw dictionary) was tried too: 8.5-20
// µs, but cases a third larger. Compressors are reused; decompressors too (about 40
// KiB each).
var (
	caseDeflaters = sync.Pool{New: func() any {
		d := &caseDeflater{}
		w, err := kflate.NewWriterDict(&d.out, caseDeflateLevel, []byte(endedCaseDictionary))
		if err != nil {
			panic(err) // only for an invalid level
		}
		d.w = w
		return d
	}}
	caseInflaters = sync.Pool{New: func() any {
		return flate.NewReaderDict(bytes.NewReader(nil), []byte(endedCaseDictionary))
	}}
)

// encodeEndedCase is an ended case as its account's hash of ended cases keeps it:
// deflated, or JSON while an earlier version may have to read it.
func encodeEndedCase(c state.Case, deflate bool) ([]byte, error) {
	plain, err := json.Marshal(storeCase(c))
	if err != nil {
		return nil, fmt.Errorf("encode case %s: %w", c.ID, err)
	}
	if !deflate {
		return plain, nil
	}
	d := caseDeflaters.Get().(*caseDeflater)
	defer caseDeflaters.Put(d)
	var out bytes.Buffer
	out.WriteByte(endedCaseDeflatedV1)
	d.out.to = &out
	defer func() { d.out.to = nil }() // not to keep this case's buffer alive in the pool
	d.w.Reset(&d.out)
	if _, err := d.w.Write(plain); err != nil {
		return nil, fmt.Errorf("deflate case %s: %w", c.ID, err)
	}
	if err := d.w.Close(); err != nil {
		return nil, fmt.Errorf("deflate case %s: %w", c.ID, err)
	}
	return out.Bytes(), nil
}

// caseDeflater is a pooled compressor whose output can be pointed at each case's
// buffer and away from it again without a second Reset, which costs as much as the
// first: it primes the compressor with the whole dictionary again.
type caseDeflater struct {
	w   *kflate.Writer
	out redirect
}

// redirect writes to whichever buffer it points at.
type redirect struct{ to *bytes.Buffer }

func (r *redirect) Write(p []byte) (int, error) { return r.to.Write(p) }

// decodeCase reads a case as the store keeps it: JSON, or deflated (an ended case).
func decodeCase(id string, b []byte) (state.Case, error) {
	if len(b) > 0 && b[0] == endedCaseDeflatedV1 {
		r := caseInflaters.Get().(io.ReadCloser)
		defer caseInflaters.Put(r)
		if err := r.(flate.Resetter).Reset(bytes.NewReader(b[1:]), []byte(endedCaseDictionary)); err != nil {
			return state.Case{}, fmt.Errorf("case %s: inflate: %w", id, err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			return state.Case{}, fmt.Errorf("case %s: inflate: %w", id, err)
		}
		b = plain
	}
	var s storedCase
	if err := json.Unmarshal(b, &s); err != nil {
		return state.Case{}, fmt.Errorf("case %s: decode: %w", id, err)
	}
	return loadCase(id, s), nil
}
