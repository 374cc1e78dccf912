package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets/targetstest"
	"github.com/ferry-relay/ferry/worker"
)

func newSink(t *testing.T, opts sink.Options) (*sink.Server, string) {
	s := sink.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDeliversMixedSizesByteIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: files up to 50 MiB (make test runs it)")
	}
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: raw
    kind: http
    url: %[1]s/ok/raw
    method: PUT
    concurrency: 4
  - name: form
    kind: http
    url: %[1]s/ok/form
    body: multipart
    field: document
`, base), pipelineOptions{})

	sizes := []int{0, 1, 1000, 64 << 10, 1<<20 + 3, 17 << 20, 50 << 20}
	var files []file
	for i, n := range sizes {
		files = append(files, file{name: fmt.Sprintf("Facture été 2026 n°%d.pdf", i), data: targetstest.RandomBytes(n, uint64(i))})
	}
	// Several files in one multipart request, and each one raw.
	accepted := p.upload("form", files...)
	for _, f := range files {
		code, body := p.rawUpload("raw", f, nil)
		if code != http.StatusAccepted {
			t.Fatalf("raw upload of %d bytes: %d %s", len(f.data), code, body)
		}
	}
	var all jobView
	_ = all
	list, _, err := p.jobs.List(context.Background(), jobs.AllTenants(), jobs.Filter{Target: "raw", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := ids(accepted)
	for _, j := range list {
		want = append(want, j.ID)
	}
	if len(want) != 2*len(files) {
		t.Fatalf("%d jobs recorded, want %d", len(want), 2*len(files))
	}
	for i, j := range accepted {
		if j.Size != int64(len(files[i].data)) || j.SHA256 != sha(files[i].data) || j.Filename != files[i].name {
			t.Errorf("accepted job %d: %q %d bytes %s; sent %q %d bytes %s", i, j.Filename, j.Size, j.SHA256, files[i].name, len(files[i].data), sha(files[i].data))
		}
		if j.Status != apitypes.StatusQueued || j.URL != "/v1/jobs/"+j.ID {
			t.Errorf("accepted job %d: status %s url %s", i, j.Status, j.URL)
		}
	}
	final := p.waitFinal(want, 2*time.Minute)

	got := map[string]sink.Document{}
	for _, d := range s.Documents() {
		got[d.JobID] = d
	}
	for id, j := range final {
		if j.Status != jobs.StatusSuccess || j.Attempts != 1 {
			t.Errorf("job %s: %s after %d attempts (%s)", id, j.Status, j.Attempts, j.LastError)
			continue
		}
		d, ok := got[id]
		switch {
		case !ok:
			t.Errorf("job %s SUCCESS but the target never received it", id)
		case d.SHA256 != j.SHA256 || d.Size != j.Size:
			t.Errorf("job %s: target received %d bytes %s, uploaded %d bytes %s", id, d.Size, d.SHA256, j.Size, j.SHA256)
		case d.Name != j.Filename:
			t.Errorf("job %s: target got the name %q, want %q", id, d.Name, j.Filename)
		case j.RemoteID != d.ID:
			t.Errorf("job %s: remote id %q, target's id %q", id, j.RemoteID, d.ID)
		}
	}
	if n := len(s.Documents()); n != len(want) {
		t.Errorf("target received %d documents, want %d (no duplicates)", n, len(want))
	}
	var a struct{ Attempts []apitypes.Attempt }
	if code := p.get("/v1/jobs/"+want[0]+"/attempts", &a); code != http.StatusOK || len(a.Attempts) != 1 || a.Attempts[0].Outcome != "SUCCESS" || a.Attempts[0].HTTPStatus != 201 {
		t.Errorf("attempts: %d %+v", code, a.Attempts)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: flaky
    kind: http
    url: %s/ok
    backoff: {initial: 50ms, max: 200ms}
`, base), pipelineOptions{})
	s.Fail(3, http.StatusServiceUnavailable, 0)
	job := p.upload("flaky", file{"doc.txt", []byte("hello")})[0]
	j := p.waitFinal([]string{job.ID}, 30*time.Second)[job.ID]
	if j.Status != jobs.StatusSuccess || j.Attempts != 4 {
		t.Fatalf("job %s after %d attempts, want SUCCESS after 4", j.Status, j.Attempts)
	}
	var a struct{ Attempts []apitypes.Attempt }
	p.get("/v1/jobs/"+job.ID+"/attempts", &a)
	var outcomes []string
	for _, at := range a.Attempts {
		outcomes = append(outcomes, fmt.Sprintf("%d:%s:%d", at.Number, at.Outcome, at.HTTPStatus))
	}
	if got := strings.Join(outcomes, " "); got != "1:RETRY:503 2:RETRY:503 3:RETRY:503 4:SUCCESS:201" {
		t.Errorf("attempts %s", got)
	}
	if a.Attempts[0].Error == "" || a.Attempts[0].FinishedAt == nil {
		t.Errorf("failed attempt lacks its error or end: %+v", a.Attempts[0])
	}
	if n := len(s.Documents()); n != 1 {
		t.Errorf("target holds %d documents, want 1", n)
	}
}

func TestPermanentAndExhaustedFailures(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: refuse
    kind: http
    url: %[1]s/refuse
  - name: down
    kind: http
    url: http://127.0.0.1:1/nothing-listens-here
    max_attempts: 3
    backoff: {initial: 10ms, max: 20ms}
`, base), pipelineOptions{})
	refused := p.upload("refuse", file{"a.pdf", []byte("a")})[0]
	down := p.upload("down", file{"b.pdf", []byte("b")})[0]
	final := p.waitFinal([]string{refused.ID, down.ID}, 30*time.Second)

	r := final[refused.ID]
	if r.Status != jobs.StatusFailed || r.Attempts != 1 || !strings.Contains(r.LastError, "422") {
		t.Errorf("refused job: %s after %d attempts, error %q; want FAILED after 1 with the 422", r.Status, r.Attempts, r.LastError)
	}
	d := final[down.ID]
	if d.Status != jobs.StatusFailed || d.Attempts != 3 || !strings.Contains(d.LastError, "connection refused") {
		t.Errorf("unreachable target: %s after %d attempts, error %q; want FAILED after 3 keeping the last error", d.Status, d.Attempts, d.LastError)
	}
	if len(s.Documents()) != 0 {
		t.Errorf("target holds documents it refused")
	}

	// A person lists the failures, and re-queues one: its attempts start
	// again.
	var list struct {
		Jobs       []jobView
		NextCursor string `json:"next_cursor"`
	}
	if code := p.get("/v1/jobs?status=FAILED&target=refuse", &list); code != 200 || len(list.Jobs) != 1 || list.Jobs[0].ID != refused.ID {
		t.Fatalf("list FAILED: %d %+v", code, list.Jobs)
	}
	var again jobView
	if code := p.post("/v1/jobs/"+refused.ID+"/retry", &again); code != 200 || again.Status != apitypes.StatusQueued || again.Attempts != 0 {
		t.Fatalf("retry: %d %s attempts=%d", code, again.Status, again.Attempts)
	}
	j := p.waitFinal([]string{refused.ID}, 30*time.Second)[refused.ID]
	if j.Status != jobs.StatusFailed || j.Attempts != 1 {
		t.Errorf("re-queued job: %s after %d attempts", j.Status, j.Attempts)
	}
	var a struct{ Attempts []apitypes.Attempt }
	p.get("/v1/jobs/"+refused.ID+"/attempts", &a)
	if len(a.Attempts) != 2 {
		t.Errorf("%d attempts recorded over both runs, want 2", len(a.Attempts))
	}
	// Only FAILED or CANCELED jobs can be re-queued.
	var e apiError
	if code := p.post("/v1/jobs/"+refused.ID+"/cancel", &e); code != http.StatusConflict || e.Error.Code != "conflict" {
		t.Errorf("cancel of a FAILED job: %d %+v", code, e)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: limited
    kind: http
    url: %s/ok
    backoff: {initial: 10ms, max: 10ms}
`, base), pipelineOptions{})
	s.Fail(1, http.StatusTooManyRequests, 2*time.Second)
	job := p.upload("limited", file{"x.bin", []byte("x")})[0]
	j := p.waitFinal([]string{job.ID}, 30*time.Second)[job.ID]
	if j.Status != jobs.StatusSuccess || j.Attempts != 2 {
		t.Fatalf("%s after %d attempts", j.Status, j.Attempts)
	}
	as, err := p.jobs.Attempts(context.Background(), jobs.AllTenants(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gap := as[1].StartedAt.Sub(*as[0].FinishedAt); gap < 1900*time.Millisecond {
		t.Errorf("second attempt %s after the 429, want at least the 2s Retry-After (backoff alone is 10ms)", gap)
	}
}

func TestIdempotentUpload(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: t, kind: http, url: %q}\n", base+"/ok"), pipelineOptions{})
	send := func() (int, []jobView) {
		req := p.multipartRequest(map[string]string{"target": "t", "batch": "b1"}, file{"same.txt", []byte("same")})
		req.Header.Set("Idempotency-Key", "upload-42")
		var out struct{ Jobs []jobView }
		code := p.do(req, &out)
		return code, out.Jobs
	}
	c1, first := send()
	c2, second := send()
	if c1 != http.StatusAccepted || c2 != http.StatusOK || len(first) != 1 || len(second) != 1 || first[0].ID != second[0].ID {
		t.Fatalf("repeated request: %d %v then %d %v; want the same job", c1, ids(first), c2, ids(second))
	}
	p.waitFinal(ids(first), 30*time.Second)
	list, _, _ := p.jobs.List(context.Background(), jobs.AllTenants(), jobs.Filter{Batch: "b1"})
	if len(list) != 1 || len(s.Documents()) != 1 {
		t.Errorf("%d jobs and %d deliveries, want 1 and 1", len(list), len(s.Documents()))
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: t, kind: http, url: %q}\n", base+"/ok"), pipelineOptions{maxUpload: 1 << 20, noWorker: true})

	multipart := func(fields map[string]string, files ...file) *http.Request {
		return p.multipartRequest(fields, files...)
	}
	raw := func(query string, body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads?"+query, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		return req
	}
	get := func(path string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, p.api.URL+path, nil)
		return req
	}
	big := make([]byte, 1<<20+1)
	tests := []struct {
		name   string
		req    *http.Request
		auth   string
		status int
		code   string
	}{
		{"no key", get("/v1/jobs"), "-", 401, "unauthorized"},
		{"wrong key", get("/v1/jobs"), "Bearer fy_wrong", 401, "unauthorized"},
		{"not bearer", get("/v1/jobs"), "Basic Zm9vOmJhcg==", 401, "unauthorized"},
		{"unknown job", get("/v1/jobs/0190a7d2-0000-7000-8000-000000000000"), "", 404, "not_found"},
		{"malformed job id", get("/v1/jobs/../../etc"), "", 404, "not_found"},
		{"bad status filter", get("/v1/jobs?status=DONE"), "", 400, "bad_request"},
		{"bad limit", get("/v1/jobs?limit=0"), "", 400, "bad_request"},
		{"bad cursor", get("/v1/jobs?cursor=xyz"), "", 400, "bad_request"},
		{"missing target", multipart(nil, file{"a", []byte("a")}), "", 400, "bad_request"},
		{"no file", multipart(map[string]string{"target": "t"}), "", 400, "bad_request"},
		{"unknown target", multipart(map[string]string{"target": "nope"}, file{"a", []byte("a")}), "", 422, "unknown_target"},
		{"unknown target named after file", multipart(map[string]string{"zzz": "x"}, file{"a", []byte("a")}), "", 400, "bad_request"},
		{"over the limit", multipart(map[string]string{"target": "t"}, file{"big", big}), "", 413, "too_large"},
		{"raw over the limit", raw("target=t&filename=big", string(big)), "", 413, "too_large"},
		{"raw without target", raw("filename=a", "a"), "", 400, "bad_request"},
		{"raw unknown target", raw("target=x&filename=a", "a"), "", 422, "unknown_target"},
		{"raw without filename", raw("target=t", "a"), "", 400, "bad_request"},
		{"malformed multipart", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", strings.NewReader("--xx\r\nbroken"))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=xx")
			return req
		}(), "", 400, "bad_request"},
		{"unknown route", get("/v2/nothing"), "", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.auth {
			case "-":
			case "":
				tc.req.Header.Set("Authorization", "Bearer "+p.key)
			default:
				tc.req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apiError
			_ = jsonDecode(resp, &e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, e.Error, tc.status, tc.code)
			}
		})
	}
	// Nothing refused left a job or a stored file behind.
	if list, _, _ := p.jobs.List(context.Background(), jobs.AllTenants(), jobs.Filter{}); len(list) != 0 {
		t.Errorf("%d jobs recorded by refused uploads", len(list))
	}
	if n := countObjects(t, p); n != 0 {
		t.Errorf("%d objects left in storage by refused uploads", n)
	}
	// An empty file is a valid document.
	if code, body := p.rawUpload("t", file{"vide.txt", nil}, url.Values{}); code != http.StatusAccepted {
		t.Errorf("empty file: %d %s", code, body)
	}
}

func TestKeysetPagination(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: t, kind: http, url: %q}\n  - {name: u, kind: http, url: %q}\n", base+"/ok", base+"/ok"), pipelineOptions{noWorker: true})
	var want []string
	for i := range 25 {
		target := "t"
		if i%5 == 0 {
			target = "u"
		}
		want = append(want, p.upload(target, file{fmt.Sprintf("f%d", i), []byte{byte(i)}})[0].ID)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Jobs       []jobView
			NextCursor string `json:"next_cursor"`
		}
		if code := p.get("/v1/jobs?limit=10&cursor="+cursor, &page); code != 200 {
			t.Fatalf("page %d: status %d", pages, code)
		}
		got = append(got, ids(page.Jobs)...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("paged through %d jobs, want %d", len(got), len(want))
	}
	for i := range got { // newest first
		if got[i] != want[len(want)-1-i] {
			t.Fatalf("position %d: %s, want %s", i, got[i], want[len(want)-1-i])
		}
	}
	var u struct{ Jobs []jobView }
	p.get("/v1/jobs?target=u&status=QUEUED", &u)
	if len(u.Jobs) != 5 {
		t.Errorf("filter target=u: %d jobs, want 5", len(u.Jobs))
	}
	var c jobView
	if code := p.post("/v1/jobs/"+want[0]+"/cancel", &c); code != 200 || c.Status != apitypes.StatusCanceled {
		t.Errorf("cancel queued job: %d %s", code, c.Status)
	}
}

func TestLongDeliveryKeepsItsMessage(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{SlowDelay: 3 * time.Second})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: slow, kind: http, url: %q}\n", base+"/slow"), pipelineOptions{noWorker: true})
	// JetStream would redeliver after 1s without the worker's progress
	// signals; the delivery takes 3s.
	p.queue.SetAckWait(time.Second)
	p.startWorker(worker.Config{Lease: time.Second})
	job := p.upload("slow", file{"slow.bin", []byte("slow")})[0]
	j := p.waitFinal([]string{job.ID}, 30*time.Second)[job.ID]
	if j.Status != jobs.StatusSuccess || j.Attempts != 1 {
		t.Fatalf("%s after %d attempts", j.Status, j.Attempts)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
}

func TestShutdownHandsBackInFlightWork(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{SlowDelay: 5 * time.Second})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: slow, kind: http, url: %q}\n", base+"/slow"), pipelineOptions{noWorker: true})
	p.startWorker(worker.Config{Lease: 2 * time.Second, ShutdownGrace: 200 * time.Millisecond})
	job := p.upload("slow", file{"slow.bin", []byte("slow")})[0]
	waitFor(t, 10*time.Second, func() bool { return len(s.Requests()) > 0 || running(p, job.ID) })
	p.stopWorker()
	<-p.workerDone
	j, _ := p.jobs.Get(context.Background(), jobs.AllTenants(), job.ID)
	if j.Status != jobs.StatusQueued || j.Attempts != 0 {
		t.Fatalf("after shutdown the job is %s with %d attempts; want QUEUED, the interrupted attempt not counted", j.Status, j.Attempts)
	}
	as, _ := p.jobs.Attempts(context.Background(), jobs.AllTenants(), job.ID)
	if len(as) != 1 || as[0].Outcome != jobs.OutcomeInterrupted {
		t.Fatalf("attempts %+v, want one INTERRUPTED", as)
	}
	// Another worker picks it up and delivers it.
	p.startWorker(worker.Config{Lease: 2 * time.Second})
	j = p.waitFinal([]string{job.ID}, 30*time.Second)[job.ID]
	if j.Status != jobs.StatusSuccess {
		t.Fatalf("%s", j.Status)
	}
}

func TestDeadWorkerJobIsRecovered(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: t, kind: http, url: %q}\n", base+"/ok"), pipelineOptions{noWorker: true})
	job := p.upload("t", file{"a.txt", []byte("a")})[0]
	// A worker claims the job and dies without a word.
	if _, err := p.jobs.Claim(context.Background(), job.ID, "dead-worker/1", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	p.startWorker(worker.Config{Lease: 2 * time.Second})
	j := p.waitFinal([]string{job.ID}, 30*time.Second)[job.ID]
	if j.Status != jobs.StatusSuccess || j.Attempts != 2 {
		t.Fatalf("%s after %d attempts, want SUCCESS after 2", j.Status, j.Attempts)
	}
	as, _ := p.jobs.Attempts(context.Background(), jobs.AllTenants(), job.ID)
	if as[0].Outcome != jobs.OutcomeAbandoned || as[0].Worker != "dead-worker/1" {
		t.Errorf("first attempt %+v, want ABANDONED by dead-worker/1", as[0])
	}
	if len(s.Documents()) != 1 {
		t.Errorf("%d deliveries", len(s.Documents()))
	}
}

func running(p *pipeline, id string) bool {
	j, err := p.jobs.Get(context.Background(), jobs.AllTenants(), id)
	return err == nil && j.Status == jobs.StatusRunning
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
