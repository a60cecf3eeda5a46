package events

import (
	"fmt"
	"strings"
	"testing"
)

func TestMaskAccountNo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"6222020200012341234", "****1234"},
		{"li.lei@example.com", "****.com"},
		{"12345", "****2345"},
		{"1234", "****"},
		{"12", "****"},
		{"", ""},
		{"账号一二三四五", "****二三四五"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := MaskAccountNo(tt.in); got != tt.want {
				t.Errorf("MaskAccountNo(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPrintingADestinationDoesNotLeakTheAccountNumberOrThePayee(t *testing.T) {
	const accountNo = "6222020200012341234"
	dest := Destination{Kind: DestinationBankCard, AccountNo: accountNo, PayeeName: "Li Lei", Bank: "ICBC"}
	payout := PayoutRequestedData{PayoutID: "po-1", Destination: &dest}
	withdrawal := WithdrawalRequestedData{WithdrawalID: "wd-1", Destination: &dest}
	values := map[string]any{"Destination": dest, "*Destination": &dest, "PayoutRequestedData": payout, "*WithdrawalRequestedData": &withdrawal}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
			t.Run(name+" "+verb, func(t *testing.T) {
				out := fmt.Sprintf(verb, v)
				if strings.Contains(out, accountNo) || strings.Contains(out, fmt.Sprintf("%x", accountNo)) {
					t.Errorf("Sprintf(%s) = %s leaks the account number", verb, out)
				}
				if strings.Contains(out, "Li Lei") || strings.Contains(out, fmt.Sprintf("%x", "Li Lei")) {
					t.Errorf("Sprintf(%s) = %s leaks the payee's name", verb, out)
				}
			})
		}
	}
	if got := fmt.Sprintf("%v", dest); !strings.Contains(got, "****1234") {
		t.Errorf("%%v = %s, want the masked account number ****1234", got)
	}
}
