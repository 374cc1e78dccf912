package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/worker"
)

// Documents with versions (issue 21), end to end through the http kind to
// the sink, which (without a versions mode) receives each version as a
// file: enough to see identity, versions, unchanged re-sends, order,
// supersede and refused deletes.

// orderSink wraps the sink and records when each delivery began and
// ended, and how many ran at once.
type orderSink struct {
	next http.Handler
	// hold is how long each delivery is held, in nanoseconds.
	hold atomic.Int64

	mu       sync.Mutex
	inFlight int
	peak     int
	spans    []span
}

type span struct {
	job        string
	start, end time.Time
}

func (h *orderSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_") {
		h.next.ServeHTTP(w, r)
		return
	}
	h.mu.Lock()
	h.inFlight++
	h.peak = max(h.peak, h.inFlight)
	h.mu.Unlock()
	start := time.Now()
	// The body read first: the server then notices a client that goes
	// away (the request's context ends), as it does not mid-body.
	b, err := io.ReadAll(r.Body)
	if err == nil {
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	select {
	case <-time.After(time.Duration(h.hold.Load())):
	case <-r.Context().Done():
		// The worker gave up on this delivery (it was stopped): it is no
		// longer in flight, and never reaches the sink.
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
		return
	}
	h.next.ServeHTTP(w, r)
	h.mu.Lock()
	h.inFlight--
	h.spans = append(h.spans, span{job: r.Header.Get("X-Ferry-Job-Id"), start: start, end: time.Now()})
	h.mu.Unlock()
}

func (h *orderSink) snapshot() ([]span, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]span(nil), h.spans...), h.peak
}

// docPipeline is a pipeline with one http target "docs" to the sink.
func docPipeline(t *testing.T, opts pipelineOptions) (*pipeline, *sink.Server, *orderSink) {
	t.Helper()
	s := sink.New(sink.Options{})
	h := &orderSink{next: s}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: docs
    kind: http
    concurrency: 8
    url: %s/in
    backoff: {initial: 50ms, max: 200ms}
`, srv.URL), opts)
	return p, s, h
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// sendVersion uploads data as a version of key (declaring its SHA-256 when
// declare) and returns the answer's status and job.
func (p *pipeline) sendVersion(key string, data []byte, declare bool) (int, jobView) {
	p.t.Helper()
	fields := map[string]string{"target": "docs", "document": key}
	if declare {
		fields["sha256"] = sum(data)
	}
	var out apitypes.UploadResult
	var e apiError
	req := p.multipartRequest(fields, file{name: "r.txt", data: data})
	code := p.do(req, &out)
	if code != http.StatusAccepted && code != http.StatusOK {
		_ = e
		p.t.Fatalf("version of %s: status %d", key, code)
	}
	if len(out.Jobs) != 1 {
		p.t.Fatalf("version of %s: %d jobs", key, len(out.Jobs))
	}
	return code, out.Jobs[0]
}

func TestDocumentVersionsUnchangedAndNew(t *testing.T) {
	p, s, _ := docPipeline(t, pipelineOptions{})
	code, v1 := p.sendVersion("reports/r.txt", []byte("one"), false)
	if code != http.StatusAccepted || v1.Version != 1 || v1.Document == "" || v1.DocumentKey != "reports/r.txt" {
		t.Fatalf("v1: %d %+v", code, v1)
	}
	p.waitFinal([]string{v1.ID}, 20*time.Second)
	objects := countObjects(t, p)
	// The same content again, streamed: the same job, its copy removed.
	code, again := p.sendVersion("reports/r.txt", []byte("one"), false)
	if code != http.StatusOK || again.ID != v1.ID {
		t.Fatalf("same content: %d %+v", code, again)
	}
	// Declared: answered before the body, no byte stored.
	code, again = p.sendVersion("reports/r.txt", []byte("one"), true)
	if code != http.StatusOK || again.ID != v1.ID {
		t.Fatalf("same content declared: %d %+v", code, again)
	}
	if n := countObjects(t, p); n != objects {
		t.Fatalf("objects: %d after re-sends, %d before", n, objects)
	}
	code, v2 := p.sendVersion("reports/r.txt", []byte("two"), true)
	if code != http.StatusAccepted || v2.Version != 2 || v2.Document != v1.Document {
		t.Fatalf("v2: %d %+v", code, v2)
	}
	final := p.waitFinal([]string{v2.ID}, 20*time.Second)
	if final[v2.ID].Status != jobs.StatusSuccess {
		t.Fatalf("v2: %+v", final[v2.ID])
	}
	if n := len(s.Documents()); n != 2 {
		t.Fatalf("sink holds %d files, want 2 versions", n)
	}
	var doc apitypes.Document
	if code := p.get("/v1/documents/"+v1.Document, &doc); code != http.StatusOK || doc.Versions != 2 ||
		len(doc.History) != 2 || doc.Current == nil || doc.Current.Version != 2 || doc.Current.SHA256 != sum([]byte("two")) {
		t.Fatalf("document: %d %+v", code, doc)
	}
	var list apitypes.DocumentList
	if code := p.get("/v1/documents?target=docs&key_prefix=reports/", &list); code != http.StatusOK || len(list.Documents) != 1 {
		t.Fatalf("list: %d %+v", code, list)
	}
	// Another tenant's document is not found; nor is it deletable by it.
	other := p.newKey("other", "other", apikeys.RoleOperator)
	if code := p.as(other, http.MethodGet, "/v1/documents/"+v1.Document, "", nil); code != http.StatusNotFound {
		t.Fatalf("other tenant's document: %d", code)
	}
	if code := p.as(other, http.MethodDelete, "/v1/documents/"+v1.Document, "", nil); code != http.StatusNotFound {
		t.Fatalf("other tenant's delete: %d", code)
	}
	// Uploaders upload; deleting is for operators and admins.
	uploader := p.newKey("up", "default", apikeys.RoleUploader)
	if code := p.as(uploader, http.MethodDelete, "/v1/documents/"+v1.Document, "", nil); code != http.StatusForbidden {
		t.Fatalf("uploader's delete: %d", code)
	}
	if code := p.as(uploader, http.MethodGet, "/v1/documents/"+v1.Document, "", nil); code != http.StatusOK {
		t.Fatalf("uploader's read: %d", code)
	}
	// The http kind (no versions mode) cannot delete.
	var e apiError
	if code := p.as(p.key, http.MethodDelete, "/v1/documents?target=docs&key="+url.QueryEscape("reports/r.txt"), "", &e); code != http.StatusUnprocessableEntity ||
		e.Error.Code != "delete_unsupported" || !strings.Contains(e.Error.Message, "http") {
		t.Fatalf("delete on http: %d %+v", code, e)
	}
}

func TestDocumentVersionsWhileTargetDownSupersede(t *testing.T) {
	p, s, _ := docPipeline(t, pipelineOptions{noWorker: true})
	_, v1 := p.sendVersion("k", []byte("v1"), true)
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	p.waitFinal([]string{v1.ID}, 20*time.Second)
	p.stopWorker()
	<-p.workerDone
	_, v2 := p.sendVersion("k", []byte("v2"), true)
	_, v3 := p.sendVersion("k", []byte("v3"), true)
	got := p.waitFinal([]string{v2.ID}, 5*time.Second)
	if got[v2.ID].Status != jobs.StatusSuperseded {
		t.Fatalf("v2 is %s", got[v2.ID].Status)
	}
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	if j := p.waitFinal([]string{v3.ID}, 20*time.Second)[v3.ID]; j.Status != jobs.StatusSuccess {
		t.Fatalf("v3: %+v", j)
	}
	var shas []string
	for _, d := range s.Documents() {
		shas = append(shas, d.SHA256)
	}
	if want := []string{sum([]byte("v1")), sum([]byte("v3"))}; strings.Join(shas, ",") != strings.Join(want, ",") {
		t.Fatalf("sink received %v, want v1 then v3 %v", shas, want)
	}
}

func TestDocumentFailedVersionRequeuedBySameContent(t *testing.T) {
	p, s, _ := docPipeline(t, pipelineOptions{})
	s.Fail(1, http.StatusBadRequest, 0) // a refusal no retry helps
	_, v1 := p.sendVersion("k", []byte("one"), false)
	if j := p.waitFinal([]string{v1.ID}, 20*time.Second)[v1.ID]; j.Status != jobs.StatusFailed {
		t.Fatalf("v1: %+v", j)
	}
	code, again := p.sendVersion("k", []byte("one"), true)
	if code != http.StatusAccepted || again.ID != v1.ID {
		t.Fatalf("same content after a failure: %d %+v", code, again)
	}
	if j := p.waitFinal([]string{v1.ID}, 20*time.Second)[v1.ID]; j.Status != jobs.StatusSuccess {
		t.Fatalf("v1 again: %+v", j)
	}
}

// 20 versions of one document from 4 clients at once: those delivered
// arrive in the order accepted (version numbers), never two at once, and
// the last one is delivered.
func TestDocumentVersionsInOrderFromConcurrentClients(t *testing.T) {
	p, _, h := docPipeline(t, pipelineOptions{noWorker: true})
	h.hold.Store(int64(30 * time.Millisecond))
	for range 2 {
		p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	}
	var mu sync.Mutex
	byJob := map[string]int{}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := range 5 {
				_, j := p.sendVersion("hot.txt", fmt.Appendf(nil, "client %d version %d", c, i), c%2 == 0)
				mu.Lock()
				byJob[j.ID] = j.Version
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(byJob) != 20 {
		t.Fatalf("%d versions, want 20", len(byJob))
	}
	var all []string
	latest := ""
	for id, v := range byJob {
		all = append(all, id)
		if v == 20 {
			latest = id
		}
	}
	final := p.waitFinal(all, 60*time.Second)
	if final[latest].Status != jobs.StatusSuccess {
		t.Fatalf("version 20: %+v", final[latest])
	}
	spans, peak := h.snapshot()
	if peak != 1 {
		t.Fatalf("%d versions in flight at once, want 1", peak)
	}
	prev := 0
	for i, sp := range spans {
		v := byJob[sp.job]
		if v <= prev {
			t.Fatalf("delivery %d is version %d after version %d", i, v, prev)
		}
		if i > 0 && sp.start.Before(spans[i-1].end) {
			t.Fatalf("version %d began before version %d ended", v, prev)
		}
		prev = v
	}
	for id, j := range final {
		if j.Status != jobs.StatusSuccess && j.Status != jobs.StatusSuperseded {
			t.Fatalf("version %d is %s", byJob[id], j.Status)
		}
		// A version handed back while an older one ran counted no attempt.
		if j.Status == jobs.StatusSuccess && j.Attempts != 1 {
			t.Fatalf("version %d took %d attempts", byJob[id], j.Attempts)
		}
	}
	t.Logf("%d of 20 versions delivered, in order, one at a time", len(spans))
}

// badUpload sends a multipart body built by build and returns the status
// and the error's message.
func (p *pipeline) badUpload(build func(w *multipart.Writer)) (int, string) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	build(w)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	var e apiError
	code := p.do(req, &e)
	return code, e.Error.Message
}

func TestDocumentBadInput(t *testing.T) {
	p, _, _ := docPipeline(t, pipelineOptions{noWorker: true})
	one := func(fields map[string]string, files ...string) func(*multipart.Writer) {
		return func(w *multipart.Writer) {
			_ = w.WriteField("target", "docs")
			for k, v := range fields {
				_ = w.WriteField(k, v)
			}
			for _, f := range files {
				part, _ := w.CreateFormFile("file", f)
				_, _ = part.Write([]byte("data of " + f))
			}
		}
	}
	cases := map[string]struct {
		build func(*multipart.Writer)
		want  string
	}{
		"key too long":       {one(map[string]string{"document": strings.Repeat("k", 1025)}, "a"), "document"},
		"key not UTF-8":      {one(map[string]string{"document": "a\xffb"}, "a"), "document"},
		"key control char":   {one(map[string]string{"document": "a\x01b"}, "a"), "document"},
		"two files one key":  {one(map[string]string{"document": "k"}, "a", "b"), "document"},
		"sha256 not hex":     {one(map[string]string{"sha256": strings.Repeat("z", 64)}, "a"), "sha256"},
		"sha256 short":       {one(map[string]string{"sha256": "abc"}, "a"), "sha256"},
		"sha256 uppercase":   {one(map[string]string{"sha256": strings.ToUpper(sum([]byte("data of a")))}, "a"), "sha256"},
		"sha256 not matched": {one(map[string]string{"document": "k", "sha256": sum([]byte("other"))}, "a"), "sha256"},
	}
	for name, c := range cases {
		code, msg := p.badUpload(c.build)
		if code != http.StatusBadRequest || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %q, want 400 naming %s", name, code, msg, c.want)
		}
	}
	// A raw upload names its document in the query.
	code, body := p.rawUpload("docs", file{name: "r", data: []byte("x")}, url.Values{"document": {"a\x7fb"}})
	if code != http.StatusBadRequest || !strings.Contains(string(body), "document") {
		t.Errorf("raw key with DEL: %d %s", code, body)
	}
	var n int
	if err := p.pool.QueryRow(t.Context(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("jobs recorded: %d %v", n, err)
	}
	if n := countObjects(t, p); n != 0 {
		t.Fatalf("%d objects stored by refused uploads", n)
	}
}

// With the content declared, an unchanged version is answered before a
// byte of the body is read: here the body never comes.
func TestDocumentDeclaredUnchangedAnsweredBeforeBody(t *testing.T) {
	p, _, _ := docPipeline(t, pipelineOptions{})
	_, v1 := p.sendVersion("k", []byte("one"), true)
	p.waitFinal([]string{v1.ID}, 20*time.Second)
	body, stall := io.Pipe()
	defer stall.Close()
	q := url.Values{"target": {"docs"}, "filename": {"r.txt"}, "document": {"k"}, "sha256": {sum([]byte("one"))}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The transport waits for a body read in progress: end it with ctx.
	context.AfterFunc(ctx, func() { _ = stall.CloseWithError(ctx.Err()) })
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.api.URL+"/v1/uploads?"+q.Encode(), body)
	req.ContentLength = 3
	req.Header.Set("Content-Type", "application/octet-stream")
	var out apitypes.UploadResult
	if code := p.do(req, &out); code != http.StatusOK || len(out.Jobs) != 1 || out.Jobs[0].ID != v1.ID {
		t.Fatalf("declared unchanged: %d %+v", code, out)
	}
}

// A worker stopped during a version's delivery hands it back; a newer
// version accepted meanwhile waits for it: versions still arrive in order,
// one at a time, and the newest is delivered.
func TestDocumentVersionsInOrderAcrossWorkerStop(t *testing.T) {
	p, s, h := docPipeline(t, pipelineOptions{noWorker: true})
	h.hold.Store(int64(time.Second))
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 50 * time.Millisecond})
	_, v1 := p.sendVersion("k", []byte("v1"), true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		running := h.inFlight
		h.mu.Unlock()
		if running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("v1 never reached the sink")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, v2 := p.sendVersion("k", []byte("v2"), true)
	p.stopWorker()
	<-p.workerDone
	h.hold.Store(int64(50 * time.Millisecond))
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	final := p.waitFinal([]string{v1.ID, v2.ID}, 30*time.Second)
	if final[v2.ID].Status != jobs.StatusSuccess || final[v1.ID].Status != jobs.StatusSuccess {
		t.Fatalf("v1 %s, v2 %s", final[v1.ID].Status, final[v2.ID].Status)
	}
	var shas []string
	for _, d := range s.Documents() {
		shas = append(shas, d.SHA256)
	}
	if want := []string{sum([]byte("v1")), sum([]byte("v2"))}; strings.Join(shas, ",") != strings.Join(want, ",") {
		t.Fatalf("sink received %v, want v1 then v2", shas)
	}
	if _, peak := h.snapshot(); peak != 1 {
		t.Fatalf("%d deliveries at once", peak)
	}
	as, err := p.jobs.Attempts(t.Context(), jobs.AllTenants(), v1.ID)
	if err != nil || len(as) != 2 || as[0].Outcome != jobs.OutcomeInterrupted {
		t.Fatalf("v1's attempts: %+v %v", as, err)
	}
}
