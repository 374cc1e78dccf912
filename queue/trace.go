package queue

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// A job's message carries the W3C traceparent of its trace in its
// headers (issue 25), so that the worker's attempt, in another process
// and maybe an hour later, joins the trace of the upload. The sweeper
// publishes retries and lost messages again from Postgres, which keeps
// the traceparent with the job (jobs.Job.TraceParent).

// traceContext is the propagation of job messages: W3C trace context only
// (a baggage header would carry whatever a client put in it).
var traceContext = propagation.TraceContext{}

// HeaderCarrier lets OpenTelemetry propagators read and write the headers
// of a NATS message.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the value of key, "" if none.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the keys of the headers.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// message is the message of m: no data, and its trace's traceparent when
// it has one.
func (q *Queue) message(m Msg) *nats.Msg {
	msg := &nats.Msg{Subject: q.Subject(m.Target, m.JobID)}
	if m.TraceParent != "" {
		msg.Header = nats.Header{}
		HeaderCarrier(msg.Header).Set("traceparent", m.TraceParent)
	}
	return msg
}

// TraceContext returns ctx with the trace context msg carries as the
// remote parent, or ctx itself when it carries none.
func TraceContext(ctx context.Context, msg jetstream.Msg) context.Context {
	h := msg.Headers()
	if len(h) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, HeaderCarrier(h))
}
