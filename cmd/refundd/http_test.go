package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/state"
)

// noAccounts is a store that has never seen an account or a case.
type noAccounts struct{}

func (noAccounts) Account(context.Context, string) (state.Account, bool, error) {
	return state.Account{}, false, nil
}
func (noAccounts) Case(context.Context, string) (state.Case, string, bool, error) {
	return state.Case{}, "", false, nil
}
func (noAccounts) EndedCases(context.Context, string) ([]state.Case, error) { return nil, nil }

func TestTheReadAPIAnswersEdgeCasesInJSON(t *testing.T) {
	var ready atomic.Bool
	api := &readAPI{accounts: noAccounts{}, rules: state.DefaultRules(), ready: &ready, log: zerolog.Nop()}
	handler := api.routes(prometheus.NewRegistry())
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, method, path string
		status             int
		allow              string
		bodyAtMost         int
	}{
		{"a wrong method on a known route is 405 with Allow", http.MethodPost, "/v1/accounts/acct-1", http.StatusMethodNotAllowed, "GET, HEAD", 200},
		{"a wrong method on the health check is 405 too", http.MethodDelete, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD", 200},
		{"a path with .. is a JSON 404, not a redirect", http.MethodGet, "/v1/accounts/../healthz", http.StatusNotFound, "", 200},
		{"a path with // is a JSON 404", http.MethodGet, "/v1//accounts/acct-1", http.StatusNotFound, "", 200},
		{"an unknown account id of any length is not echoed whole", http.MethodGet, "/v1/accounts/" + long, http.StatusNotFound, "", 200},
		{"an unknown case id of any length is not echoed whole", http.MethodGet, "/v1/cases/" + long, http.StatusNotFound, "", 200},
		{"an unknown endpoint", http.MethodGet, "/v2/" + long, http.StatusNotFound, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://refundd"+tc.path, nil))
			if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
				t.Fatalf("HTTP %d Allow %q, want %d %q; body %s", rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow, rec.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] == "" {
				t.Fatalf("body %q is not a JSON error", rec.Body)
			}
			if rec.Body.Len() > tc.bodyAtMost {
				t.Errorf("body of %d bytes echoes too much: %.120s", rec.Body.Len(), rec.Body)
			}
		})
	}
}
