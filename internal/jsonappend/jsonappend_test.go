package jsonappend

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// Whatever a string holds, String writes what encoding/json writes, or nothing.
func FuzzStringWritesAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "acct-42", "Li Wei", "李伟", "x < y & z", "a\"b\\c", "\x7f", "\xff", "tab\there", "line\u2028sep", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got, ok := String([]byte("prefix"), s)
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("refused %q but wrote %q", s, got)
			}
			return
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("String(%q) wrote %s, json.Marshal writes %s", s, got[len("prefix"):], want)
		}
	})
}

// Whatever a time is, Time writes what encoding/json writes, or nothing.
func FuzzTimeWritesAsEncodingJSON(f *testing.F) {
	f.Add(int64(1795453137868000000), int32(0))
	f.Add(int64(0), int32(8*3600))
	f.Add(int64(-1<<63), int32(-(5*3600 + 30*60)))
	f.Add(int64(1<<63-1), int32(100000))
	f.Add(int64(1795453137000000000), int32(3601))
	f.Fuzz(func(t *testing.T, unixNano int64, zoneSeconds int32) {
		at := time.Unix(0, unixNano).UTC()
		if zoneSeconds != 0 {
			at = at.In(time.FixedZone("", int(zoneSeconds)))
		}
		want, err := json.Marshal(at)
		got, ok := Time(nil, at)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("Time wrote %s where json.Marshal fails: %v", got, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Time wrote %s, json.Marshal writes %s", got, want)
		}
	})
}

func TestOrdinaryValuesAreWrittenByHand(t *testing.T) {
	for _, s := range []string{"acct-42", "李伟", "refunds.case.status_changed"} {
		if _, ok := String(nil, s); !ok {
			t.Errorf("%q took the slow way", s)
		}
	}
	if _, ok := Time(nil, time.Date(2026, 11, 23, 8, 0, 0, 123, time.UTC)); !ok {
		t.Error("a UTC time took the slow way")
	}
}
