package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// syncEnv is a pipeline with an http target "docs" that keeps versions
// (versions: put, each document at its own path of the sink), a source
// folder, a state folder, and a switch in front of ferry's API that can
// make it unreachable.
type syncEnv struct {
	t     *testing.T
	p     *pipeline
	sink  *sink.Server
	dir   string
	state string
	// front is what the sync talks to: ferry's API, unless down.
	front *httptest.Server
	down  atomic.Bool
	// hold keeps ferry's answers to uploads (after ferry acted on them)
	// until it is cleared or the client goes away; held counts them.
	hold atomic.Bool
	held atomic.Int64
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	s := sink.New(sink.Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: docs
    kind: http
    url: "%s/docs/{document}"
    versions: put
    concurrency: 8
    backoff: {initial: 50ms, max: 200ms}
`, srv.URL), pipelineOptions{})
	e := &syncEnv{t: t, p: p, sink: s, dir: t.TempDir(), state: t.TempDir()}
	api, _ := url.Parse(p.api.URL)
	rp := httputil.NewSingleHostReverseProxy(api)
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			http.Error(w, "ferry is down", http.StatusServiceUnavailable)
			return
		}
		if e.hold.Load() && r.Method == http.MethodPost && r.URL.Path == "/v1/uploads" {
			e.holdAnswer(rp, w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(e.front.Close)
	return e
}

// holdAnswer lets ferry act on the request, then keeps its answer back
// until hold is cleared (or the client is gone: a lost answer).
func (e *syncEnv) holdAnswer(rp http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, r)
	e.held.Add(1)
	for e.hold.Load() {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// engine opens the state and returns an engine over the source folder;
// the state is closed when the test ends or close is called.
func (e *syncEnv) engine(o syncer.Options) (*syncer.Engine, func()) {
	e.t.Helper()
	src, err := source.NewDir(e.dir, source.Rules{}.Skip)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.engineOf(src, o)
}

// engineOf is engine over src.
func (e *syncEnv) engineOf(src source.Source, o syncer.Options) (*syncer.Engine, func()) {
	e.t.Helper()
	o.Target = "docs"
	if o.MinAge == 0 {
		o.MinAge = 100 * time.Millisecond
	}
	if o.RetryFor == 0 {
		o.RetryFor = 5 * time.Second
	}
	c, err := client.New(e.front.URL, e.p.key, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	x, err := index.Open(e.state, time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	var once sync.Once
	closeIt := func() { once.Do(func() { _ = x.Close() }) }
	e.t.Cleanup(closeIt)
	eng, err := syncer.New(o, syncer.Deps{Client: c, Source: src, Index: x, Log: e.p.log}, e.front.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	return eng, closeIt
}

// once runs one pass with o and returns its summary.
func (e *syncEnv) once(o syncer.Options) syncer.Summary {
	e.t.Helper()
	eng, closeIt := e.engine(o)
	defer closeIt()
	sum, err := eng.Once(context.Background())
	if err != nil {
		e.t.Fatalf("sync: %v", err)
	}
	return sum
}

// write writes data to the source's file rel.
func (e *syncEnv) write(rel, data string) {
	e.t.Helper()
	p := filepath.Join(e.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// versions is what the target holds: each document path (unescaped) and
// the SHA-256 of its versions, oldest first.
func (e *syncEnv) versions() map[string][]string {
	out := map[string][]string{}
	for p, vs := range e.sink.Resources() {
		key, err := url.PathUnescape(strings.TrimPrefix(p, sink.DocumentsPath))
		if err != nil {
			key = p
		}
		for _, v := range vs {
			out[key] = append(out[key], v.SHA256)
		}
	}
	return out
}

// waitTarget waits until the target holds exactly want: per document,
// one version per content, in order (contents given as strings).
func (e *syncEnv) waitTarget(want map[string][]string, within time.Duration) {
	e.t.Helper()
	sums := map[string][]string{}
	for k, vs := range want {
		for _, v := range vs {
			sums[k] = append(sums[k], sum([]byte(v)))
		}
	}
	deadline := time.Now().Add(within)
	for {
		got := e.versions()
		if mapsEqual(got, sums) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("target holds %v\nwant %v", got, sums)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
