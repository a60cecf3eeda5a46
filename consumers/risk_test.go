package consumers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// riskStore holds one opened, verified account with a top-up, and a holder index in
// which overdue lists, per holder name, the accounts with an overdue amount. It
// records the holder names of each read of the index and the steps it saves.
type riskStore struct {
	account state.Account
	overdue map[string][]string
	// failReads is how many reads of the holder index fail before one succeeds.
	failReads int

	mu        sync.Mutex
	reads     [][]string
	readBegun chan struct{} // closed by the first read of the holder index
	steps     []state.Step
}

func newRiskStore(t *testing.T, holderName string, overdue map[string][]string) *riskStore {
	t.Helper()
	rules := state.DefaultRules()
	at := time.Now().Add(-time.Hour)
	account := state.NewAccount("acct-1")
	for _, ev := range []events.Event{
		newRiskEvent(t, events.AccountOpened, "e-open", at, &events.AccountOpenedData{HolderType: events.HolderIndividual, HolderName: holderName, Verified: true}),
		newRiskEvent(t, events.TopupReceived, "e-topup", at, &events.TopupReceivedData{TopupID: "t1", Amount: events.MustAmount("500.00"), Currency: "CNY", Channel: events.ChannelAlipay, PayerType: "individual", PayerName: holderName}),
	} {
		d, err := state.Apply(account, ev, rules, at)
		if err != nil {
			t.Fatal(err)
		}
		account = d.Account
	}
	return &riskStore{account: account, overdue: overdue, readBegun: make(chan struct{})}
}

func newRiskEvent(t *testing.T, typ events.Type, id string, at time.Time, p events.Payload) events.Event {
	t.Helper()
	ev, err := events.New(typ, "acct-1", "/test", id, at, p)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (s *riskStore) Load(_ context.Context, ids []string, _ []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	out := map[string]state.Versioned{}
	for _, id := range ids {
		out[id] = state.Versioned{Account: s.account, Version: "v1"}
	}
	return out, map[state.EventRef]string{}, nil
}

func (s *riskStore) SameHolderOverdue(_ context.Context, names []string) (map[string][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reads) == 0 {
		close(s.readBegun)
	}
	s.reads = append(s.reads, slices.Clone(names))
	if s.failReads > 0 {
		s.failReads--
		return nil, errors.New("i/o timeout (test)")
	}
	out := map[string][]string{}
	for _, name := range names {
		out[name] = s.overdue[name]
	}
	return out, nil
}

func (s *riskStore) Commit(_ context.Context, steps []state.Step) ([]state.StepResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, steps...)
	out := make([]state.StepResult, len(steps))
	for i := range out {
		out[i] = state.StepResult{Outcome: state.Applied}
	}
	return out, nil
}

// hintedRiskStore also offers the holder names it has cached, and its Load waits
// (up to 2 s) for a read of the holder index to begin, recording whether one did: a
// read that overlaps the load begins while the load is still running.
type hintedRiskStore struct {
	*riskStore
	cachedNames    map[string]string
	readDuringLoad bool
}

func (s *hintedRiskStore) CachedHolderNames(ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		if name, ok := s.cachedNames[id]; ok {
			out[id] = name
		}
	}
	return out
}

func (s *hintedRiskStore) Load(ctx context.Context, ids []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	select {
	case <-s.readBegun:
		s.readDuringLoad = true
	case <-time.After(2 * time.Second):
	}
	return s.riskStore.Load(ctx, ids, refs)
}

// withdrawOnce hands the intake one batch with a withdrawal of 100.00 from top-up t1
// by the original route, and returns the status its step gave the case.
func withdrawOnce(t *testing.T, store Store, saved *riskStore) string {
	t.Helper()
	ev := newRiskEvent(t, events.WithdrawalRequested, "e-withdraw", time.Now().Add(-time.Minute),
		&events.WithdrawalRequestedData{WithdrawalID: "w1", TopupID: "t1", Amount: events.MustAmount("100.00"), Method: events.MethodOriginal})
	body, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var actions []string
	msg := streamMsg{subject: ev.NATSSubject(), data: body, mu: &mu, actions: &actions}
	in := NewIntake(nil, nil, store, zerolog.Nop(), Config{})
	if _, err := in.handle(context.Background(), NewBatch([]jetstream.Msg{msg})); err != nil {
		t.Fatal(err)
	}
	if len(saved.steps) != 1 || saved.steps[0].Account == nil {
		t.Fatalf("saved %d steps, want the withdrawal's", len(saved.steps))
	}
	return saved.steps[0].Account.Cases["w1"].Status
}

func TestTheSameHolderRiskRuleReadsTheHolderIndexAlongsideTheLoad(t *testing.T) {
	overdueElsewhere := map[string][]string{"Li Wei": {"acct-2"}}

	t.Run("a holder with an overdue account elsewhere sends the withdrawal to review, read once while the batch loads", func(t *testing.T) {
		store := &hintedRiskStore{riskStore: newRiskStore(t, "Li Wei", overdueElsewhere), cachedNames: map[string]string{"acct-1": "Li Wei"}}
		if got := withdrawOnce(t, store, store.riskStore); got != events.StatusInReview {
			t.Errorf("case status %q, want %q", got, events.StatusInReview)
		}
		if !store.readDuringLoad {
			t.Error("the holder index was read only after the load")
		}
		if len(store.reads) != 1 {
			t.Errorf("the holder index was read %d times (%v), want once", len(store.reads), store.reads)
		}
	})

	t.Run("a cached name that is not the loaded account's is read again after the load", func(t *testing.T) {
		store := &hintedRiskStore{riskStore: newRiskStore(t, "Li Wei", overdueElsewhere), cachedNames: map[string]string{"acct-1": "Wang Fang"}}
		if got := withdrawOnce(t, store, store.riskStore); got != events.StatusInReview {
			t.Errorf("case status %q, want %q: the rule must use the loaded holder's name", got, events.StatusInReview)
		}
		if want := [][]string{{"Wang Fang"}, {"Li Wei"}}; !slices.EqualFunc(store.reads, want, slices.Equal) {
			t.Errorf("holder index reads %v, want %v", store.reads, want)
		}
	})

	t.Run("a read alongside the load that fails is made again after it", func(t *testing.T) {
		store := &hintedRiskStore{riskStore: newRiskStore(t, "Li Wei", overdueElsewhere), cachedNames: map[string]string{"acct-1": "Li Wei"}}
		store.failReads = 1
		if got := withdrawOnce(t, store, store.riskStore); got != events.StatusInReview {
			t.Errorf("case status %q, want %q", got, events.StatusInReview)
		}
		if len(store.reads) != 2 {
			t.Errorf("the holder index was read %d times, want the failed read and another", len(store.reads))
		}
	})

	t.Run("a holder without an overdue account elsewhere goes straight to transfer", func(t *testing.T) {
		store := &hintedRiskStore{riskStore: newRiskStore(t, "Li Wei", map[string][]string{"Li Wei": {"acct-1"}}), cachedNames: map[string]string{"acct-1": "Li Wei"}}
		if got := withdrawOnce(t, store, store.riskStore); got != events.StatusApprovedPendingTransfer {
			t.Errorf("case status %q, want %q", got, events.StatusApprovedPendingTransfer)
		}
	})

	t.Run("a store without cached names is read after the load", func(t *testing.T) {
		store := newRiskStore(t, "Li Wei", overdueElsewhere)
		if got := withdrawOnce(t, store, store); got != events.StatusInReview {
			t.Errorf("case status %q, want %q", got, events.StatusInReview)
		}
		if want := [][]string{{"Li Wei"}}; !slices.EqualFunc(store.reads, want, slices.Equal) {
			t.Errorf("holder index reads %v, want %v", store.reads, want)
		}
	})
}
