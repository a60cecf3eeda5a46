package events

import (
	"fmt"
	"strings"
)

// Destination is an account money is paid out to: a withdrawal's designated
// receiving account, a refund's bank account, a payout's target.
//
// AccountNo and PayeeName are personal data. Every fmt verb prints a Destination
// with them masked (see Format), so logging one with %v or %+v is safe; its JSON,
// which is what goes on the wire, keeps them whole.
type Destination struct {
	Kind         string `json:"kind"` // DestinationAlipay or DestinationBankCard
	AccountNo    string `json:"account_no"`
	PayeeName    string `json:"payee_name"`
	Bank         string `json:"bank,omitempty"`
	Branch       string `json:"branch,omitempty"`
	ProvinceCity string `json:"province_city,omitempty"`
	// PayeeType says whether the payee is a person or a company (HolderIndividual,
	// HolderCompany); a refund of a personal recharge to a company is checked [000].
	PayeeType string `json:"payee_type,omitempty"`
}

func (d *Destination) validate(field string) error {
	return firstError(
		checkEnum(field+".kind", d.Kind, destKinds),
		checkText(field+".account_no", d.AccountNo, maxShortLen),
		checkText(field+".payee_name", d.PayeeName, maxNameLen),
		checkBank(field+".bank", d.Bank),
		checkOptionalText(field+".branch", d.Branch, maxNameLen),
		checkOptionalText(field+".province_city", d.ProvinceCity, maxNameLen),
		checkOptionalEnum(field+".payee_type", d.PayeeType, holderTypes),
	)
}

// String describes d with the account number and the payee's name masked.
func (d Destination) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{kind:%s account_no:%s payee_name:%s", d.Kind, MaskAccountNo(d.AccountNo), MaskName(d.PayeeName))
	if d.Bank != "" {
		fmt.Fprintf(&b, " bank:%s", d.Bank)
	}
	if d.Branch != "" {
		fmt.Fprintf(&b, " branch:%s", d.Branch)
	}
	if d.ProvinceCity != "" {
		fmt.Fprintf(&b, " province_city:%s", d.ProvinceCity)
	}
	b.WriteString("}")
	return b.String()
}

// Format makes every verb, including %#v and %d which would otherwise
// bypass String, print the masked form.
func (d Destination) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(d.String()))
}

// MaskAccountNo keeps the last 4 characters of an account number, enough for
// a person to recognise it: "6222020200012341234" → "****1234". The prefix is
// always 4 stars so the mask does not reveal the length; an account number of
// 4 characters or fewer is masked entirely.
func MaskAccountNo(s string) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	if len(r) <= 4 {
		return "****"
	}
	return "****" + string(r[len(r)-4:])
}

// MaskName keeps a name's first character, enough for a person who knows the payee to
// recognise it: "Zhang San" → "Z***". The mask does not reveal the length.
func MaskName(s string) string {
	r := []rune(s)
	if len(r) == 0 {
		return ""
	}
	return string(r[0]) + "***"
}
