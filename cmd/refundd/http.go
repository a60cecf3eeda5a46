package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
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
	Case(ctx context.Context, id string) (c state.Case, accountID string, ok bool, err error)
	EndedCases(ctx context.Context, accountID string) ([]state.Case, error)
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
	mux.HandleFunc("GET /v1/accounts/{id}", api.account(func(_ context.Context, a state.Account) (any, error) { return accountView(a, api.rules), nil }))
	mux.HandleFunc("GET /v1/accounts/{id}/topups", api.account(func(_ context.Context, a state.Account) (any, error) { return topUpViews(a, api.rules), nil }))
	mux.HandleFunc("GET /v1/accounts/{id}/cases", api.accountCases)
	mux.HandleFunc("GET /v1/cases/{id}", api.caseByID)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// A known path asked with another method: say which methods it takes.
		asGet := r.Clone(r.Context())
		asGet.Method = http.MethodGet
		if _, pattern := mux.Handler(asGet); pattern != "/" && pattern != "" {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint "+quoted(r.URL.Path))
	})
	return rejectUncleanPaths(mux)
}

// rejectUncleanPaths answers a path with "..", "//" or "." segments with a JSON 404.
// ServeMux would redirect it to the cleaned path with an HTML body, and a read API for
// machines should neither redirect nor speak HTML.
func rejectUncleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || path.Clean(p) != p {
			writeError(w, http.StatusNotFound, "no such endpoint "+quoted(p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// quoted echoes what a client sent, bounded and quoted, so an error body never carries
// a megabyte or a control character back.
func quoted(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// account serves one view of an account, or 404 for an id the engine never saw.
func (api *readAPI) account(view func(context.Context, state.Account) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !events.ValidAccountID(id) {
			writeError(w, http.StatusNotFound, "unknown account "+quoted(id))
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
		body, err := view(r.Context(), acct)
		if err != nil {
			api.log.Error().Err(err).Str("account_id", id).Msg("read account view")
			writeError(w, http.StatusServiceUnavailable, "account store unavailable")
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// caseByID serves GET /v1/cases/{id}, or 404 for an id no account holds.
func (api *readAPI) caseByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 128 {
		writeError(w, http.StatusNotFound, "unknown case "+quoted(id))
		return
	}
	c, accountID, ok, err := api.accounts.Case(r.Context(), id)
	if err != nil {
		api.log.Error().Err(err).Str("case_id", id).Msg("read case")
		writeError(w, http.StatusServiceUnavailable, "case store unavailable")
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "unknown case "+quoted(id))
		return
	}
	writeJSON(w, http.StatusOK, caseView(accountID, c))
}

// accountCases serves GET /v1/accounts/{id}/cases?offset=N&limit=M (limit 1-100,
// default 20): the account's cases, newest first.
func (api *readAPI) accountCases(w http.ResponseWriter, r *http.Request) {
	offset, err := queryInt(r, "offset", 0, 0, 1<<30)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := queryInt(r, "limit", 20, 1, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	api.account(func(ctx context.Context, a state.Account) (any, error) {
		ended, err := api.accounts.EndedCases(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		return casesPage(a.ID, a.Cases, ended, offset, limit), nil
	})(w, r)
}

// queryInt reads an integer query parameter within [lo, hi], or def when absent.
func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}
