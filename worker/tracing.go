package worker

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/targets"
)

// Each delivery attempt is a span, "deliver", in the trace its message
// carries (the upload's: queue/trace.go), with children claim, the
// connector's steps and their requests (targets/tracing.go) and finish.
// A retry is a new message, so a new "deliver" span in the same trace.
// Spans name the job, the target, the attempt, the outcome and the HTTP
// status: never a file name, a parameter or an error's text (which can
// quote a URL); the log lines of the attempt carry its trace_id for that.

// tracer returns the worker's tracer from the global provider (a no-op
// unless tracing is set up), asked at each use.
func tracer() trace.Tracer { return otel.Tracer("github.com/ferry-relay/ferry/worker") }

// startDelivery starts the span of the attempt msg asks for, in the
// trace the message carries.
func startDelivery(ctx context.Context, t *targets.Target, msg jetstream.Msg) (context.Context, trace.Span) {
	ctx = queue.TraceContext(ctx, msg)
	return tracer().Start(ctx, "deliver", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("ferry.target", t.Name), attribute.String("messaging.system", "nats")))
}

// endDelivery says on span how the attempt at job ended.
func endDelivery(span trace.Span, job jobs.Job, fin decision) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("ferry.job.id", job.ID), attribute.Int("ferry.attempt", job.Attempts),
			attribute.String("ferry.outcome", fin.Outcome))
		if fin.HTTPStatus != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", fin.HTTPStatus))
		}
		if fin.Uncertain != "" {
			span.SetAttributes(attribute.String("ferry.uncertain", fin.Uncertain))
		}
		if fin.Status != jobs.StatusSuccess {
			span.SetStatus(codes.Error, fin.Outcome)
		}
	}
	span.End()
}

// endClaim ends the claim's span: claimed, or not (and then the
// attempt's span ends too: there was no attempt).
func endClaim(span, claim trace.Span, claimed bool) {
	claim.SetAttributes(attribute.Bool("ferry.claimed", claimed))
	claim.End()
	if !claimed {
		span.SetAttributes(attribute.Bool("ferry.claimed", false))
		span.End()
	}
}

// failSpan marks span failed with a description that says what failed,
// not the error's text.
func failSpan(span trace.Span, what string) { span.SetStatus(codes.Error, what) }
