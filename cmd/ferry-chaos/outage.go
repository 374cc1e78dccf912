package main

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// outageGate puts the target down for a while: every upload is answered
// 503 until the outage ends. The sink's own Fail counts requests, which a
// circuit breaker spaces out, so an outage measured in requests would last
// as long as the breaker's pauses allow; a real one lasts a time. It also
// counts the requests in flight to each target, across every worker
// process, and keeps the peak: max_in_flight is checked against it.
//
// It also plays the slow document target: a PUT under slowDocsPath is
// carried out at once, and its answer held for slowDocs, so that a worker
// killed meanwhile has put the version without hearing so (its retry must
// find it, not put it twice).
type outageGate struct {
	next     http.Handler
	slowDocs time.Duration
	mu       sync.Mutex
	until    time.Time
	now      map[string]int // requests in flight, by target path
	peak     map[string]int
}

// down starts an outage of d.
func (g *outageGate) down(d time.Duration) {
	g.mu.Lock()
	g.until = time.Now().Add(d)
	g.mu.Unlock()
}

// peaks returns the most requests that were in flight at once, by target
// path (/ok/, /slow/, /refuse/, /docs/, /docs/slow/).
func (g *outageGate) peaks() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.peak {
		out[k] = v
	}
	return out
}

func (g *outageGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		g.next.ServeHTTP(w, r)
		return
	}
	path := "/"
	if p, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok {
		path = "/" + p + "/"
	}
	if strings.HasPrefix(r.URL.Path, slowDocsPath) {
		path = slowDocsPath // the slow document target's own count
	}
	g.mu.Lock()
	down := time.Now().Before(g.until)
	if g.now == nil {
		g.now, g.peak = map[string]int{}, map[string]int{}
	}
	g.now[path]++
	g.peak[path] = max(g.peak[path], g.now[path])
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now[path]--
		g.mu.Unlock()
	}()
	if down {
		http.Error(w, `{"error":"target down"}`, http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, slowDocsPath) {
		g.holdAnswer(w, r)
		return
	}
	g.next.ServeHTTP(w, r)
}

// slowDocsPath is the prefix of the slow document target's paths.
const slowDocsPath = "/docs/slow/"

// holdAnswer carries the request out, then holds its answer for slowDocs;
// a client gone meanwhile never hears it.
func (g *outageGate) holdAnswer(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	g.next.ServeHTTP(rec, r)
	if !sleepCtx(r.Context(), g.slowDocs) {
		return
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
