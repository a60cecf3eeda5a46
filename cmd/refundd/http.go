package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// accountReader is what the read API needs from the store.
type accountReader interface {
	Account(ctx context.Context, id string) (state.Account, bool, error)
}

type readAPI struct {
	accounts accountReader
	rules    state.Rules
	ready    *atomic.Bool
	log      zerolog.Logger
}

func (api *readAPI) routes(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !api.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/accounts/{id}", api.account(func(a state.Account) any { return accountView(a, api.rules) }))
	mux.HandleFunc("GET /v1/accounts/{id}/topups", api.account(func(a state.Account) any { return topUpViews(a, api.rules) }))
	mux.HandleFunc("GET /v1/cases/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown case "+r.PathValue("id"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// account serves one view of an account, or 404 for an id the engine never saw.
func (api *readAPI) account(view func(state.Account) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !events.ValidAccountID(id) {
			writeError(w, http.StatusNotFound, "unknown account "+id)
			return
		}
		acct, ok, err := api.accounts.Account(r.Context(), id)
		if err != nil {
			api.log.Error().Err(err).Str("account_id", id).Msg("read account")
			writeError(w, http.StatusServiceUnavailable, "account store unavailable")
			return
		}
		if !ok {
			writeError(w, http.StatusNotFound, "unknown account "+id)
			return
		}
		writeJSON(w, http.StatusOK, view(acct))
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}
