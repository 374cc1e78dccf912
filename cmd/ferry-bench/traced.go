package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// With -traced, the end-to-end scenarios also run ferry with tracing on
// ("ferry-traced", a database of its own): OTLP/HTTP to a receiver in
// this process that reads each export and answers it, as a collector on
// the same machine would, without decoding it. The other sides run with
// no OTEL_* variable, tracing off.

// tracedSuffix names the database of the traced ferry.
const tracedSuffix = "_traced"

// otlpSink is the traced side's collector.
type otlpSink struct {
	srv      *http.Server
	url      string
	exports  atomic.Int64
	received atomic.Int64
}

// startOTLPSink listens on a loopback port until stop.
func startOTLPSink(ctx context.Context) (*otlpSink, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &otlpSink{url: "http://" + ln.Addr().String()}
	o.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		o.exports.Add(1)
		o.received.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	})}
	go func() { _ = o.srv.Serve(ln) }()
	return o, nil
}

func (o *otlpSink) stop() { _ = o.srv.Close() }

// env are the variables that turn ferry's tracing on, towards o: every
// span sampled, exported in batches every second (the SDK's default is
// 5 s; the runs are short).
func (o *otlpSink) env() map[string]string {
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": o.url,
		"OTEL_SERVICE_NAME":           "ferry-bench",
		"OTEL_TRACES_SAMPLER":         "parentbased_always_on",
		"OTEL_BSP_SCHEDULE_DELAY":     "1000",
	}
}

// startTraced adds the traced side to an end-to-end scenario.
func (e *env) startTraced(ctx context.Context, opts ferryOpts, cleanup *[]func()) (*e2eSide, error) {
	sink, err := startOTLPSink(ctx)
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, sink.stop)
	pool, url, err := e.freshDB(ctx, tracedSuffix)
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, pool.Close)
	opts.env = sink.env()
	p, err := e.startFerry(ctx, pool, url, opts)
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, p.stop, func() {
		e.cfg.progress("ferry-traced: %d OTLP exports, %.1f MiB", sink.exports.Load(), float64(sink.received.Load())/(1<<20))
	})
	return &e2eSide{name: "ferry-traced", proc: p, pool: pool, cpu: cpuSpent{}}, nil
}

// tracingRows compares the sides of one scenario: ferry (tracing off)
// with the -compare build, and ferry-traced with ferry.
func tracingRows(rep *report, sides []*e2eSide, rate func([]time.Duration) []float64, what, unit string) {
	by := map[string][]float64{}
	for _, s := range sides {
		by[s.name] = rate(s.durs)
	}
	if b, ok := by["ferry-b"]; ok {
		rep.add(row{Figure: fmt.Sprintf("end to end %s, tracing off vs -compare build", what), Unit: unit,
			Ferry: spreadOf(by["ferry"]), Raw: spreadOf(b), Ratio: spreadOf(ratios(by["ferry"], b)), Goal: goal{kind: "ratio>=", x: 0.98}})
	}
	if tr, ok := by["ferry-traced"]; ok {
		rep.add(row{Figure: fmt.Sprintf("end to end %s, tracing on (every span, local OTLP receiver) vs off", what), Unit: unit,
			Ferry: spreadOf(tr), Raw: spreadOf(by["ferry"]), Ratio: spreadOf(ratios(tr, by["ferry"]))})
	}
}
