package targets

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// recorder is the test binary's tracer provider: the global one can be
// set for good only once.
var recorder = sync.OnceValue(func() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	return rec
})

// TestTracedDelivery: each step of a traced attempt is a span, its
// requests client spans in the step that sent them, carrying the
// traceparent, and no span holds the URL's path or query.
func TestTracedDelivery(t *testing.T) {
	rec := recorder()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer srv.Close()
	off := false
	for _, cfg := range []Config{{}, {Traceparent: &off}} {
		got = nil
		hc := HTTPClient(cfg)
		ctx, attempt := otel.Tracer("test").Start(context.Background(), "deliver")
		d := NewDelivery(nil, nil)
		dctx := d.TraceSteps(ctx)
		send := func() {
			req, _ := http.NewRequestWithContext(dctx, http.MethodPut, srv.URL+"/secret-path?X-Amz-Signature=abc", strings.NewReader("x"))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		send()
		if err := d.Save(dctx, Checkpoint{"sent": "1"}); err != nil {
			t.Fatal(err)
		}
		send()
		d.EndSteps(false)
		attempt.End()

		tid := attempt.SpanContext().TraceID()
		byName := map[string]sdktrace.ReadOnlySpan{}
		var clients []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != tid {
				continue
			}
			if s.Name() == http.MethodPut {
				clients = append(clients, s)
			}
			byName[s.Name()] = s
			for _, a := range s.Attributes() {
				if strings.Contains(a.Value.String(), "secret-path") || strings.Contains(a.Value.String(), "Signature") {
					t.Errorf("span %s holds %s=%s", s.Name(), a.Key, a.Value.String())
				}
			}
		}
		step1, step2 := byName["step 1: sent"], byName["step 2"]
		if step1 == nil || step2 == nil || len(clients) != 2 {
			t.Fatalf("spans %v, want step 1: sent, step 2 and two PUTs", byName)
		}
		if step1.Parent().SpanID() != attempt.SpanContext().SpanID() || clients[0].Parent().SpanID() != step1.SpanContext().SpanID() ||
			clients[1].Parent().SpanID() != step2.SpanContext().SpanID() {
			t.Error("each request is a child of its step, each step of the attempt")
		}
		for i, tp := range got {
			want := ""
			if cfg.SendsTraceparent() {
				want = "00-" + tid.String() + "-" + clients[i].SpanContext().SpanID().String() + "-01"
			}
			if tp != want {
				t.Errorf("traceparent (setting %v) %q, want %q", cfg.SendsTraceparent(), tp, want)
			}
		}
	}
}

// TestUntracedRequest: without a span nothing is started or sent.
func TestUntracedRequest(t *testing.T) {
	recorder()
	var tp string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tp = r.Header.Get("traceparent") }))
	defer srv.Close()
	resp, err := HTTPClient(Config{}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp != "" {
		t.Errorf("untraced request sent traceparent %q", tp)
	}
}

func TestTraceparentSetting(t *testing.T) {
	cfgs, err := ParseFile(strings.NewReader("targets:\n  - {name: a, kind: http, traceparent: false}\n  - {name: b, kind: http}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfgs[0].SendsTraceparent() || !cfgs[1].SendsTraceparent() {
		t.Errorf("traceparent: false sends %v; absent sends %v", cfgs[0].SendsTraceparent(), cfgs[1].SendsTraceparent())
	}
}
