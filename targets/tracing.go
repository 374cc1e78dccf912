package targets

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Traces of a delivery (issue 25). The worker traces each attempt
// (Delivery.TraceSteps); the connectors know nothing of it:
//
//   - each step of the attempt is a span: from the start to the first
//     Save, from one Save to the next, from the last to the end. A
//     connector's checkpoints are its steps (init, upload, attach).
//   - each request through HTTPClient is a client span, a child of the
//     step that sends it, and carries the W3C traceparent unless the
//     target's traceparent setting is false.
//
// Spans name methods, hosts, ports, statuses and the checkpoint keys
// saved: never a URL (a signed one is a credential), a header, a value
// saved or an error's text.

// tracer returns the connectors' tracer from the global provider (a no-op
// unless tracing is set up), asked at each use: a tracer kept from
// before the provider was set would stay with the first one set.
func tracer() trace.Tracer { return otel.Tracer("github.com/ferry-relay/ferry/targets") }

var traceContext = propagation.TraceContext{}

// SendsTraceparent reports whether requests to the target carry the W3C
// traceparent header (the default).
func (c Config) SendsTraceparent() bool { return c.Traceparent == nil || *c.Traceparent }

// stepsKey is the context key of an attempt's steps.
type stepsKey struct{}

// steps are the spans of one attempt's steps.
type steps struct {
	parent context.Context // holds the attempt's span

	mu   sync.Mutex
	n    int
	span trace.Span // the step running
}

// TraceSteps makes each step of this attempt a span, a child of ctx's
// span, and returns the context to deliver with: its requests become
// children of the step that sends them. Call EndSteps when the attempt
// is over. Without a recording span in ctx it does nothing.
func (d *Delivery) TraceSteps(ctx context.Context) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	s := &steps{parent: ctx}
	s.start()
	d.steps = s
	return context.WithValue(ctx, stepsKey{}, s)
}

// EndSteps ends the last step; failed marks it as the one that failed.
func (d *Delivery) EndSteps(failed bool) {
	if d.steps == nil {
		return
	}
	d.steps.mu.Lock()
	defer d.steps.mu.Unlock()
	if failed {
		d.steps.span.SetStatus(codes.Error, "attempt failed")
	}
	d.steps.span.End()
}

// start begins the next step (s.mu held, or s not shared yet).
func (s *steps) start() {
	s.n++
	_, s.span = tracer().Start(s.parent, "step "+strconv.Itoa(s.n),
		trace.WithAttributes(attribute.Int("ferry.step", s.n)))
}

// saved ends the step running, named by the keys it saved, and starts the
// next.
func (s *steps) saved(cp Checkpoint) {
	keys := make([]string, 0, len(cp))
	for k := range cp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.span.SetName("step " + strconv.Itoa(s.n) + ": " + strings.Join(keys, ","))
	s.span.SetAttributes(attribute.StringSlice("ferry.checkpoint.saved", keys))
	s.span.End()
	s.start()
}

// current returns ctx with the step running as its span.
func (s *steps) current(ctx context.Context) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return trace.ContextWithSpan(ctx, s.span)
}

// tracingTransport makes each request a client span and, unless told
// not to, sends its trace context.
type tracingTransport struct {
	next      http.RoundTripper
	propagate bool
}

// RoundTrip sends r in a client span when r's context is traced; an
// untraced request costs two context lookups.
func (t *tracingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if s, ok := ctx.Value(stepsKey{}).(*steps); ok {
		ctx = s.current(ctx)
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return t.next.RoundTrip(r)
	}
	ctx, span := tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(clientAttrs(r)...))
	defer span.End()
	if t.propagate {
		// A RoundTripper must not change the caller's request.
		r = r.Clone(ctx)
		traceContext.Inject(ctx, propagation.HeaderCarrier(r.Header))
	}
	resp, err := t.next.RoundTrip(r)
	switch {
	case err != nil:
		span.SetStatus(codes.Error, "no answer")
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 400 {
			span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
		}
	}
	return resp, err
}

// clientAttrs are what a client span says of its request: method, host
// and port, no path or query.
func clientAttrs(r *http.Request) []attribute.KeyValue {
	host, port := r.URL.Hostname(), r.URL.Port()
	if port == "" {
		port = "80"
		if r.URL.Scheme == "https" {
			port = "443"
		}
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", r.Method), attribute.String("server.address", host)}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	return append(attrs, attribute.String("url.scheme", r.URL.Scheme))
}
