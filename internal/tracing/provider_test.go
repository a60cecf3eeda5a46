package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/payinfra/refunds/internal/tracing"
)

func TestStartWithoutAnExporterRecordsNothing(t *testing.T) {
	tracer, stop, err := tracing.Start(context.Background(), tracing.ExporterConfig{ServiceInstance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if tracer != nil {
		t.Fatal("a tracer without an exporter configured: spans would be allocated for nothing")
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// collector is a stand-in OTLP/HTTP collector that records the paths it is posted to.
type collector struct {
	mu    sync.Mutex
	posts []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	if r.Method == http.MethodPost && len(body) > 0 {
		c.posts = append(c.posts, r.URL.Path)
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.posts...)
}

func TestStartWithAnEndpointExportsToItsTracesPath(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)

	tracer, stop, err := tracing.Start(context.Background(), tracing.ExporterConfig{Endpoint: srv.URL + "/", ServiceInstance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if tracer == nil {
		t.Fatal("no tracer with an endpoint configured")
	}
	_, span := tracer.Start(context.Background(), "billing.topup.received")
	span.End()
	// Shutdown exports what the batcher holds: once it returns, the post was made.
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := col.paths(); len(got) != 1 || got[0] != "/v1/traces" {
		t.Fatalf("collector received posts to %v, want one to /v1/traces", got)
	}
}
