package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// streamMsg is one stored stream message as the intake sees it, possibly delivered
// twice: its copies share what was done with it, as JetStream's acks (by stream
// sequence) do.
type streamMsg struct {
	subject string
	data    []byte
	mu      *sync.Mutex
	actions *[]string
}

func (m streamMsg) record(a string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	*m.actions = append(*m.actions, a)
	return nil
}

func (m streamMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1, Timestamp: time.Now(), Stream: "S", Sequence: jetstream.SequencePair{Stream: 7}}, nil
}
func (m streamMsg) Data() []byte                     { return m.data }
func (m streamMsg) Headers() nats.Header             { return nats.Header{} }
func (m streamMsg) Subject() string                  { return m.subject }
func (m streamMsg) Reply() string                    { return "" }
func (m streamMsg) Ack() error                       { return m.record("ack") }
func (m streamMsg) DoubleAck(context.Context) error  { return m.record("ack") }
func (m streamMsg) Nak() error                       { return m.record("nak") }
func (m streamMsg) NakWithDelay(time.Duration) error { return m.record("nak") }
func (m streamMsg) InProgress() error                { return nil }
func (m streamMsg) Term() error                      { return m.record("term") }
func (m streamMsg) TermWithReason(string) error      { return m.record("term") }

// openedAccountStore holds one opened account and saves whatever it is given.
type openedAccountStore struct{ account state.Account }

func (s *openedAccountStore) Load(_ context.Context, ids []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	out := map[string]state.Versioned{}
	for _, id := range ids {
		out[id] = state.Versioned{Account: s.account, Version: "v1"}
	}
	return out, map[state.EventRef]string{}, nil
}

func (s *openedAccountStore) SameHolderOverdue(context.Context, []string) (map[string][]string, error) {
	return nil, nil
}

func (s *openedAccountStore) Commit(_ context.Context, steps []state.Step) ([]state.StepResult, error) {
	out := make([]state.StepResult, len(steps))
	for i := range out {
		out[i] = state.StepResult{Outcome: state.Applied}
	}
	return out, nil
}

func TestACopyOfAnEventInTheSameBatchIsSettledLikeItsFirstCopy(t *testing.T) {
	account := state.NewAccount("acct-1")
	account.Opened, account.Currency = true, "CNY"
	// A payment of a bill not issued yet must wait: both deliveries of the one stored
	// message must be nak'd. Acking the second would remove the event for good.
	ev, err := events.New(events.BillPaid, "acct-1", "/billing", "e-pay", time.Now().Add(-time.Hour), &events.BillPaidData{BillID: "b-late", Amount: events.MustAmount("10.00")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := ev.Encode()
	var mu sync.Mutex
	var actions []string
	msg := streamMsg{subject: ev.NATSSubject(), data: body, mu: &mu, actions: &actions}

	in := NewIntake(nil, nil, &openedAccountStore{account: account}, zerolog.Nop(), Config{})
	if _, err := in.handle(context.Background(), NewBatch([]jetstream.Msg{msg, msg})); err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 || actions[0] != "nak" || actions[1] != "nak" {
		t.Fatalf("the two deliveries were settled %v, want [nak nak]", actions)
	}
}

// countingCommitStore is openedAccountStore that remembers the steps it saved.
type countingCommitStore struct {
	openedAccountStore
	saved []state.Step
}

func (s *countingCommitStore) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	s.saved = append(s.saved, steps...)
	return s.openedAccountStore.Commit(ctx, steps)
}

// Two events of one batch announcing the same fact with the same data are one fact:
// the second is settled like the first and saves nothing. With other data they are
// decided apart (and the store refuses the second as a contradiction).
func TestTheSameFactTwiceInOneBatchIsSavedOnce(t *testing.T) {
	account := state.NewAccount("acct-1")
	account.Opened, account.Currency = true, "CNY"
	consumption := func(id, amount string) streamMsg {
		ev, err := events.New(events.ConsumptionRecorded, "acct-1", "/billing", id, time.Now().Add(-time.Hour),
			&events.ConsumptionRecordedData{ConsumptionID: "c-1", Amount: events.MustAmount(amount)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := ev.Encode()
		return streamMsg{subject: ev.NATSSubject(), data: body, mu: &sync.Mutex{}, actions: &[]string{}}
	}
	for _, tc := range []struct {
		name        string
		second      string
		wantSteps   int
		wantActions string
	}{
		{"the same data", "1.00", 1, "ack"},
		{"other data", "2.00", 2, "ack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, second := consumption("e-1", "1.00"), consumption("e-2", tc.second)
			store := &countingCommitStore{openedAccountStore: openedAccountStore{account: account}}
			in := NewIntake(nil, nil, store, zerolog.Nop(), Config{})
			if _, err := in.handle(context.Background(), NewBatch([]jetstream.Msg{first, second})); err != nil {
				t.Fatal(err)
			}
			if len(store.saved) != tc.wantSteps {
				t.Errorf("%d steps saved, want %d", len(store.saved), tc.wantSteps)
			}
			if got := *second.actions; len(got) != 1 || got[0] != tc.wantActions {
				t.Errorf("the second event was settled %v, want [%s]", got, tc.wantActions)
			}
		})
	}
}

// scriptedCommitStore is openedAccountStore whose saves answer as commit says.
type scriptedCommitStore struct {
	openedAccountStore
	commit func(steps []state.Step) ([]state.StepResult, error)
}

func (s *scriptedCommitStore) Commit(_ context.Context, steps []state.Step) ([]state.StepResult, error) {
	return s.commit(steps)
}

// recordingRelay is a Handoff that remembers what it was told.
type recordingRelay struct {
	handed        []state.OutboxEntry
	savedUnhanded int
}

func (r *recordingRelay) Hand(saved []state.OutboxEntry) { r.handed = append(r.handed, saved...) }
func (r *recordingRelay) SavedUnhanded()                 { r.savedUnhanded++ }

// The intake hands its relay what a batch saved, and says so whenever the outbox may
// hold events it does not hand: those must not be overtaken by what is handed after.
func TestTheIntakeHandsWhatItSavedAndSaysWhenItCannot(t *testing.T) {
	account := state.NewAccount("acct-1")
	account.Opened, account.Currency = true, "CNY"
	account.TopUps = []state.TopUp{{ID: "t-1", Amount: decimal.RequireFromString("100.00"), Channel: "alipay"}}
	applied := func(saved func(st state.Step) []state.OutboxEntry) func([]state.Step) ([]state.StepResult, error) {
		return func(steps []state.Step) ([]state.StepResult, error) {
			out := make([]state.StepResult, len(steps))
			for i, st := range steps {
				out[i] = state.StepResult{Outcome: state.Applied, Saved: saved(st)}
			}
			return out, nil
		}
	}
	entriesOf := func(st state.Step) []state.OutboxEntry {
		var saved []state.OutboxEntry
		for k, ev := range st.Outbound {
			saved = append(saved, state.OutboxEntry{ID: ev.ID, Subject: ev.NATSSubject(), Position: fmt.Sprintf("1-%d", k)})
		}
		return saved
	}
	for _, tc := range []struct {
		name              string
		commit            func([]state.Step) ([]state.StepResult, error)
		wantHanded        int
		wantSavedUnhanded int
	}{
		{"saved, every event where the store says", applied(entriesOf), 1, 0},
		{"saved, the store not saying where", applied(func(state.Step) []state.OutboxEntry { return nil }), 0, 1},
		{"the save's outcome not known", func([]state.Step) ([]state.StepResult, error) { return nil, errors.New("connection reset") }, 0, 1},
		{"a step Redis failed part way", func(steps []state.Step) ([]state.StepResult, error) {
			return []state.StepResult{{Outcome: state.Failed, Reason: "ERR out of memory"}}, nil
		}, 0, 1},
		{"a step that conflicted, which writes nothing", func(steps []state.Step) ([]state.StepResult, error) {
			return []state.StepResult{{Outcome: state.Conflict}}, nil
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := events.New(events.ConsumptionRecorded, "acct-1", "/billing", "e-1", time.Now().Add(-time.Hour),
				&events.ConsumptionRecordedData{ConsumptionID: "c-1", Amount: events.MustAmount("1.00")})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := ev.Encode()
			msg := streamMsg{subject: ev.NATSSubject(), data: body, mu: &sync.Mutex{}, actions: &[]string{}}
			relay := &recordingRelay{}
			store := &scriptedCommitStore{openedAccountStore: openedAccountStore{account: account}, commit: tc.commit}
			in := NewIntake(nil, nil, store, zerolog.Nop(), Config{Relay: relay})
			if _, err := in.handle(context.Background(), NewBatch([]jetstream.Msg{msg})); err != nil {
				t.Fatal(err)
			}
			if len(relay.handed) != tc.wantHanded || relay.savedUnhanded != tc.wantSavedUnhanded {
				t.Fatalf("handed %d events and said %d times that some were not, want %d and %d",
					len(relay.handed), relay.savedUnhanded, tc.wantHanded, tc.wantSavedUnhanded)
			}
		})
	}
}
