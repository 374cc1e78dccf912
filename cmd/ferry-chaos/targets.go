package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// The run's targets, all on the in-process fake sink behind outageGate.

// targetPaths are the targets the run uploads to and their paths at the
// sink (as outageGate counts them).
func (c *cluster) targetPaths() []struct{ name, path string } {
	if c.cfg.Versions > 1 {
		return []struct{ name, path string }{{targetDocs, sink.DocumentsPath}, {targetDocsSlow, slowDocsPath}}
	}
	return []struct{ name, path string }{{targetOK, "/ok/"}, {targetSlow, "/slow/"}, {targetRefuse, "/refuse/"}}
}

// targetsYAML configures three targets on the sink: one that accepts (with
// the sink's random failures), one that answers slowly (deliveries in
// flight when a worker is stopped) and one that refuses every file.
func (c *cluster) targetsYAML() string {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, t := range []struct {
		name, path  string
		concurrency int
	}{{targetOK, "/ok/", 8}, {targetSlow, "/slow/", 4}, {targetRefuse, "/refuse/", 2}} {
		fmt.Fprintf(&b, "  - name: %s\n    kind: http\n    url: http://%s%s\n    method: POST\n    body: raw\n"+
			"    concurrency: %d\n    max_attempts: %d\n    timeout: 30s\n    backoff: {initial: 200ms, max: 2s}\n",
			t.name, c.sinkAddr, t.path, t.concurrency, c.cfg.MaxAttempts)
		if n := c.cfg.MaxInFlight[t.name]; n > 0 {
			fmt.Fprintf(&b, "    max_in_flight: %d\n", n)
		}
	}
	if c.cfg.Versions > 1 {
		// Each document at its own URL, every version a conditional PUT
		// (If-None-Match: *, then If-Match: the previous ETag).
		for _, t := range c.targetPaths() {
			fmt.Fprintf(&b, "  - name: %s\n    kind: http\n    url: http://%s%s{document}\n    versions: put\n    body: raw\n"+
				"    concurrency: 6\n    max_attempts: %d\n    timeout: 30s\n    backoff: {initial: 200ms, max: 2s}\n",
				t.name, c.sinkAddr, t.path, c.cfg.MaxAttempts)
		}
	}
	return b.String()
}

func (c *cluster) startSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.sink = sink.New(sink.Options{FailRate: c.cfg.FailRate, SlowDelay: c.cfg.SlowDelay})
	c.sinkAddr = ln.Addr().String()
	c.sinkSrv = &http.Server{Handler: &c.outage, ReadHeaderTimeout: 10 * time.Second}
	c.outage.next, c.outage.slowDocs = c.sink, c.cfg.SlowDelay
	go func() { _ = c.sinkSrv.Serve(ln) }()
	return nil
}
