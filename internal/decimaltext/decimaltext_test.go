package decimaltext

import (
	"math"
	"testing"

	"github.com/shopspring/decimal"
)

// FuzzAppend holds AppendString to String and AppendFixed to StringFixed, over
// coefficients of every size and exponents on both sides of zero. In CI it runs over
// its seeds; `go test -fuzz FuzzAppend ./internal/decimaltext/` explores.
func FuzzAppend(f *testing.F) {
	for _, seed := range []struct {
		c      int64
		exp    int32
		places int8
	}{
		{0, 0, 2}, {0, -2, 2}, {0, 3, 2}, {12345, -2, 2}, {-12345, -2, 2}, {5, -1, 2}, {-5, -3, 2}, {100, -2, 0},
		{1, -20, 2}, {999999999999999999, -2, 2}, {-999999999999999999, 0, 2}, {1000000000000000000, -2, 2},
		{-9223372036854775808, -2, 2}, {7, 5, 2}, {123, -4, 3}, {45, -2, 1}, {-45, -2, 1}, {120, -3, 18}, {1, 0, 19},
	} {
		f.Add(seed.c, seed.exp, seed.places)
	}
	f.Fuzz(func(t *testing.T, c int64, exp int32, places int8) {
		if exp < -1100 || exp > 1100 {
			return // decimal's own methods pad with that many zeros too; nothing more to learn
		}
		d := decimal.New(c, exp)
		if got, want := string(AppendString(nil, d)), d.String(); got != want {
			t.Fatalf("AppendString(%d×10^%d) = %q, String %q", c, exp, got, want)
		}
		if got, want := string(AppendFixed([]byte("x"), d, int32(places))), "x"+d.StringFixed(int32(places)); got != want {
			t.Fatalf("AppendFixed(%d×10^%d, %d) = %q, StringFixed %q", c, exp, places, got, want)
		}
	})
}

// Exponents far beyond money's go to decimal's own methods: the arithmetic on them here
// would overflow an int32 near its limits (decimal itself would write billions of zeros
// for those, so only the choice of path is checked there).
func TestExtremeExponentsGoToDecimalsOwnMethods(t *testing.T) {
	for _, exp := range []int32{math.MaxInt32, math.MinInt32, math.MinInt32 + 1} {
		if ordinaryExponent(exp) {
			t.Errorf("exponent %d taken as ordinary", exp)
		}
	}
	if got, want := string(AppendFixed(nil, decimal.New(5, 1001), 2)), decimal.New(5, 1001).StringFixed(2); got != want {
		t.Errorf("AppendFixed(5e1001, 2) = %.20s…, want %.20s…", got, want)
	}
	if got, want := string(AppendString(nil, decimal.New(-5, -1001))), decimal.New(-5, -1001).String(); got != want {
		t.Errorf("AppendString(-5e-1001) = %.20s…, want %.20s…", got, want)
	}
}

func TestAppendStringFollowsTheDecimalPackagesSettings(t *testing.T) {
	d := decimal.New(150, -2)
	decimal.TrimTrailingZeros = false
	t.Cleanup(func() { decimal.TrimTrailingZeros = true })
	if got := string(AppendString(nil, d)); got != "1.50" {
		t.Fatalf("with TrimTrailingZeros off: %q, want 1.50", got)
	}
}

func BenchmarkAppend(b *testing.B) {
	d := decimal.RequireFromString("12345.67")
	buf := make([]byte, 0, 64)
	b.Run("AppendFixed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendFixed(buf[:0], d, 2)
		}
	})
	b.Run("StringFixed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], d.StringFixed(2)...)
		}
	})
	b.Run("AppendString", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendString(buf[:0], d)
		}
	})
	b.Run("String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], d.String()...)
		}
	})
}
