package consumers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

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
