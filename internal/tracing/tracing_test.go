package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestEnabled(t *testing.T) {
	for i, c := range []struct {
		env  func(string) string
		want bool
	}{
		{env(), false},
		{env("OTEL_SERVICE_NAME", "x"), false},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), true},
		{env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces"), true},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_TRACES_EXPORTER", "none"), false},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_SDK_DISABLED", "true"), false},
	} {
		if got := Enabled(c.env); got != c.want {
			t.Errorf("case %d: Enabled = %v", i, got)
		}
	}
}

func TestSetupRefusesWhatItCannotExport(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, e := range []func(string) string{
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_TRACES_EXPORTER", "zipkin"),
	} {
		if _, err := Setup(t.Context(), "ferry", "test", e, log); err == nil {
			t.Error("Setup accepted an exporter or protocol ferry does not have")
		}
	}
	shutdown, err := Setup(t.Context(), "ferry", "test", env(), log)
	if err != nil || shutdown(t.Context()) != nil {
		t.Fatalf("disabled: %v", err)
	}
}

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTraceParentRoundTrip(t *testing.T) {
	if TraceParent(context.Background()) != "" {
		t.Error("a context without a span has a traceparent")
	}
	ctx := WithTraceParent(context.Background(), parent)
	if got := TraceParent(ctx); got != parent {
		t.Errorf("TraceParent = %q, want %q", got, parent)
	}
	if SpanContextOf("garbage").IsValid() || !SpanContextOf(parent).IsValid() {
		t.Error("SpanContextOf")
	}
}

func TestLogHandlerAddsTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewTextHandler(&buf, nil))).With("component", "x")
	log.Info("untraced")
	ctx := WithTraceParent(context.Background(), parent)
	log.InfoContext(ctx, "traced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "trace_id") {
		t.Fatalf("logs:\n%s", buf.String())
	}
	want := "trace_id=" + trace.SpanContextFromContext(ctx).TraceID().String()
	if !strings.Contains(lines[1], want) || !strings.Contains(lines[1], "span_id=00f067aa0ba902b7") || !strings.Contains(lines[1], "component=x") {
		t.Errorf("traced line %q lacks %s", lines[1], want)
	}
}

func TestEndpoint(t *testing.T) {
	if Endpoint(env()) != "" {
		t.Error("off: an endpoint")
	}
	if got := Endpoint(env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")); got != "http://c:4318/v1/traces" {
		t.Errorf("base endpoint: %q", got)
	}
	if got := Endpoint(env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x")); got != "http://t/x" {
		t.Errorf("traces endpoint: %q", got)
	}
}
