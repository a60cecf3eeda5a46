package consumers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
)

// slowStore is a store whose reads and saves take at least the given times, as a
// distant or busy Redis's would.
type slowStore struct {
	Store
	load, commit time.Duration
	loadErr      error
}

func (s *slowStore) Load(ctx context.Context, ids []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	time.Sleep(s.load)
	if s.loadErr != nil {
		return nil, nil, s.loadErr
	}
	return s.Store.Load(ctx, ids, refs)
}

func (s *slowStore) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	time.Sleep(s.commit)
	return s.Store.Commit(ctx, steps)
}

// phaseSeconds reads refunds_intake_phase_seconds_total for each phase.
func phaseSeconds(t *testing.T, m *Metrics) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for p, name := range phaseNames {
		out[name] = time.Duration(value(t, m.phases[p]) * float64(time.Second))
	}
	return out
}

// value is a counter's or a gauge's value, as /metrics shows it.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

func openedWithTopUp(t *testing.T, account string) []jetstream.Msg {
	t.Helper()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	var msgs []jetstream.Msg
	for i, p := range []struct {
		typ  events.Type
		data events.Payload
	}{
		{events.AccountOpened, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true}},
		{events.TopupReceived, &events.TopupReceivedData{TopupID: "t1", Amount: events.Amount{Decimal: decimal.RequireFromString("100.00")},
			Currency: "CNY", Channel: "alipay", PayerType: "individual", PayerName: "Li Wei"}},
	} {
		ev, err := events.New(p.typ, account, "/billing", account+"-"+string(p.typ), at, p.data)
		if err != nil {
			t.Fatal(err)
		}
		body, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, &simMsg{subject: ev.NATSSubject(), data: body, seq: uint64(i + 1), delivered: 1})
	}
	return msgs
}

func TestEachPhaseOfABatchCountsAsItsWorkersTime(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr(), Protocol: connect.DefaultRedisProtocol})
	t.Cleanup(func() { _ = rdb.Close() })
	base := testenv.PreparedStore(t, rdb)
	const loadTakes, saveTakes = 40 * time.Millisecond, 80 * time.Millisecond

	t.Run("reading Redis is load, saving is save, and the workers are counted", func(t *testing.T) {
		m := NewMetrics(prometheus.NewRegistry())
		in := NewIntake(nil, nil, &slowStore{Store: base, load: loadTakes, commit: saveTakes}, zerolog.Nop(), Config{Metrics: m, Workers: 3})
		msgs := openedWithTopUp(t, "acct-phases-1")
		began := time.Now()
		if _, err := in.handle(context.Background(), in.decodeBatch(msgs)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		for _, msg := range msgs {
			if got := msg.(*simMsg).settled; got != "ack" {
				t.Fatalf("a message was settled %q, want ack", got)
			}
		}
		got := phaseSeconds(t, m)
		if got["load"] < loadTakes || got["save"] < saveTakes {
			t.Errorf("load %s (Redis took %s), save %s (took %s): each phase must hold its own wait", got["load"], loadTakes, got["save"], saveTakes)
		}
		if got["save"] >= saveTakes+loadTakes {
			t.Errorf("save %s holds the load's wait too", got["save"])
		}
		var sum time.Duration
		for _, name := range phaseNames {
			if got[name] < 0 {
				t.Errorf("phase %s: %s", name, got[name])
			}
			sum += got[name]
		}
		if sum > took {
			t.Errorf("the phases add up to %s, more than the batch took (%s)", sum, took)
		}
		if workers := value(t, m.workers); workers != 3 {
			t.Errorf("refunds_intake_workers %v, want 3", workers)
		}
	})

	t.Run("a batch whose load fails spends its time loading, and saves nothing", func(t *testing.T) {
		m := NewMetrics(prometheus.NewRegistry())
		in := NewIntake(nil, nil, &slowStore{Store: base, load: loadTakes, loadErr: errors.New("connection refused")}, zerolog.Nop(), Config{Metrics: m})
		msgs := openedWithTopUp(t, "acct-phases-2")
		if _, err := in.handle(context.Background(), in.decodeBatch(msgs)); err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if got := msg.(*simMsg).settled; got != "nak" {
				t.Fatalf("a message was settled %q, want nak (retried)", got)
			}
		}
		got := phaseSeconds(t, m)
		if got["load"] < loadTakes || got["save"] != 0 || got["decide"] != 0 {
			t.Errorf("load %s (want at least %s), decide %s and save %s (want 0)", got["load"], loadTakes, got["decide"], got["save"])
		}
	})
}
