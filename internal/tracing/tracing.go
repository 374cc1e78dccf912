// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, and carries a trace's context where ferry needs
// it kept: in a job's row (its W3C traceparent) and in log records.
//
// Nothing is set up, and so nothing exported, unless an OTLP endpoint is
// named (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says
// otherwise: the global tracer provider then stays OpenTelemetry's no-op,
// whose spans cost a context value and no allocation of a record. The
// SDK reads every other variable itself (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its _ARG,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*, ...).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Shutdown flushes the spans not yet exported and stops the exporter.
type Shutdown func(context.Context) error

// Enabled reports whether the environment (read by getenv) asks for
// traces to be exported.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	if strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Check refuses, when tracing is on, an exporter or a protocol ferry
// does not have: it exports OTLP over http/protobuf.
func Check(getenv func(string) string) error {
	if !Enabled(getenv) {
		return nil
	}
	if e := strings.ToLower(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return fmt.Errorf("OTEL_TRACES_EXPORTER=%s: ferry exports traces with otlp (or none)", e)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: ferry exports OTLP over http/protobuf (port 4318 of a collector)", proto)
	}
	return nil
}

// Endpoint returns where traces go ("" when tracing is off): the traces
// endpoint, or the base endpoint's /v1/traces.
func Endpoint(getenv func(string) string) string {
	switch {
	case !Enabled(getenv):
		return ""
	case getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	}
	return strings.TrimSuffix(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
}

// Setup installs the global tracer provider and the W3C trace-context
// propagator when the environment asks for traces (Enabled), and returns
// what flushes them at shutdown. service is the service.name given when
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names none; version is
// service.version. Export errors are logged to log. Disabled, it changes
// nothing and its Shutdown does nothing.
func Setup(ctx context.Context, service, version string, getenv func(string) string, log *slog.Logger) (Shutdown, error) {
	if !Enabled(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	if err := Check(getenv); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later detectors win: the environment's service name over ferry's.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (parent-based, always on,
	// by default), the batch's limits from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", "err", err)
	}))
	log.Info("exporting traces", "service", service)
	return tp.Shutdown, nil
}

// traceContext is the one propagation ferry uses, whatever the global one
// is: W3C traceparent, so that a job's trace survives any process.
var traceContext = propagation.TraceContext{}

// TraceParent returns the W3C traceparent of the span of ctx, or "" when
// ctx holds no valid span context (tracing off).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx with the remote span context of traceparent
// as its parent, or ctx itself when traceparent is empty or malformed.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// SpanContextOf returns the span context of traceparent (invalid when it
// is empty or malformed).
func SpanContextOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(WithTraceParent(context.Background(), traceparent))
}
