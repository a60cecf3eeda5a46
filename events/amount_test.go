package events

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestAmountMarshalsAsAStringWithTwoFractionDigits(t *testing.T) {
	tests := map[string]string{"100": `"100.00"`, "0.5": `"0.50"`, "0": `"0.00"`, "1234567.89": `"1234567.89"`}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			got, err := json.Marshal(MustAmount(in))
			if err != nil || string(got) != want {
				t.Errorf("Marshal(%s) = %s, %v; want %s", in, got, err, want)
			}
		})
	}
}

func TestAmountUnmarshal(t *testing.T) {
	tests := []struct {
		json string
		want string // "" means refused
	}{
		{`"100.00"`, "100"},
		{`"7"`, "7"},
		{`"0.5"`, "0.5"},
		{`"-3.10"`, "-3.1"}, // notation is fine; the payload's Validate refuses negatives
		{`100`, ""},
		{`1.5`, ""},
		{`"1,00"`, ""},
		{`"1e3"`, ""},
		{`"abc"`, ""},
		{`"1.005"`, ""},
		{`".5"`, ""},
		{`"5."`, ""},
		{`""`, ""},
		{`true`, ""},
		{`{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var a Amount
			err := json.Unmarshal([]byte(tt.json), &a)
			if tt.want == "" {
				var typeErr *json.UnmarshalTypeError
				if !errors.As(err, &typeErr) {
					t.Fatalf("Unmarshal(%s) = %v, %v; want an UnmarshalTypeError", tt.json, a, err)
				}
				return
			}
			if err != nil || a.String() != tt.want {
				t.Errorf("Unmarshal(%s) = %v, %v; want %s", tt.json, a, err, tt.want)
			}
		})
	}
}

func TestNewAmountRefusesWhatTheWireRefuses(t *testing.T) {
	for _, s := range []string{"1e3", "1,00", "1.005", " 1", ""} {
		if _, err := NewAmount(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewAmount(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}
