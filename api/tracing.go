package api

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The spans of an upload (issue 25): the request's server span, the
// root of the file's trace unless the client sent a traceparent, with
// upload.receive (the body read, each file's upload.store in it),
// upload.record and upload.enqueue as children. The trace context goes
// with each job (its row and its queue message), so the worker's attempts
// join the trace. Spans name targets, counts, sizes and statuses: never a
// file name, a parameter, a key or an error's text (which can quote a URL).

// tracer returns the API's tracer from the global provider (a no-op
// unless tracing is set up), asked at each use: a tracer kept from
// before the provider was set would stay with the first one set.
func tracer() trace.Tracer { return otel.Tracer("github.com/ferry-relay/ferry/api") }

// traced runs h inside a server span named name.
func traced(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A client's traceparent makes the upload part of its trace; the
		// global propagator reads it only when tracing is set up, so that
		// with tracing off no client's context is kept or passed on.
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", r.Pattern)))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
		if !span.IsRecording() {
			return
		}
		if rec, ok := w.(*statusRecorder); ok {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.code))
			if rec.code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(rec.code))
			}
		}
	})
}

// failSpan marks span failed with a description that says what failed,
// not the error's text.
func failSpan(span trace.Span, what string) {
	span.SetStatus(codes.Error, what)
}
