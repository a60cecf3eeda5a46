package events

import "testing"

func TestADeadLetterSubjectIsNeverAWildcard(t *testing.T) {
	tests := []struct{ subject, want string }{
		{"billing.topup.received.acct-1", "deadletter.billing.topup.received.acct-1"},
		{"billing.topup.received.*", "deadletter.billing.topup.received._"},
		{"billing.topup.received.>", "deadletter.billing.topup.received._"},
		{"billing..received.acct 1", "deadletter.billing._.received._"},
	}
	for _, tc := range tests {
		if got := DeadLetterSubject(tc.subject); got != tc.want {
			t.Errorf("DeadLetterSubject(%q) = %q, want %q", tc.subject, got, tc.want)
		}
		if want := tc.subject == "billing.topup.received.acct-1"; PublishableSubject(tc.subject) != want {
			t.Errorf("PublishableSubject(%q) = %t, want %t", tc.subject, !want, want)
		}
	}
}
