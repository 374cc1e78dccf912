package sweeper

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/jobs"
)

// A repair that publishes jobs (a recovered lease, a retry due, a job
// never published, a lost stream) is a span of its own, linked to the
// traces of the first jobs it publishes. Each message it publishes
// carries its job's own traceparent, kept in Postgres, so the next
// attempt joins the file's trace, not the sweeper's.

// maxLinks bounds the links of one repair's span.
const maxLinks = 32

// tracer returns the sweeper's tracer from the global provider (a no-op
// unless tracing is set up), asked at each use.
func tracer() trace.Tracer { return otel.Tracer("github.com/ferry-relay/ferry/sweeper") }

// publish publishes refs through the one enqueue path, in a span named
// for the repair when there is any.
func (s *Sweeper) publish(ctx context.Context, repair string, refs []jobs.Ref) int {
	if len(refs) == 0 {
		return 0
	}
	var links []trace.Link
	for _, r := range refs[:min(len(refs), maxLinks)] {
		if sc := tracing.SpanContextOf(r.TraceParent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := tracer().Start(ctx, "sweeper."+repair, trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("ferry.jobs", len(refs))))
	defer span.End()
	n := s.enqueue.Enqueue(ctx, refs)
	span.SetAttributes(attribute.Int("ferry.jobs.published", n))
	return n
}
