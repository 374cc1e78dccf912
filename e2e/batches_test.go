package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
)

// jsonRequest builds a request with a JSON body (none if in is nil).
func (p *pipeline) jsonRequest(method, path string, in any) *http.Request {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.api.URL+path, body)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// raw sends an authenticated request and returns the status and the body.
func (p *pipeline) raw(method, path string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.api.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestBatchesAPI(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: ok, kind: http, url: %q}
  - {name: refuse, kind: http, url: %q}
`, base+"/ok", base+"/refuse"), pipelineOptions{})

	// Creating a batch is idempotent; a different definition conflicts.
	def := map[string]any{"name": "migration été", "target": "refuse", "params": map[string]string{"dept": "HR"}}
	var b apitypes.Batch
	if code := p.do(p.jsonRequest("POST", "/v1/batches", def), &b); code != 201 || b.Name != "migration été" || b.URL != "/v1/batches/migration%20%C3%A9t%C3%A9" {
		t.Fatalf("create: %d %+v", code, b)
	}
	if code := p.do(p.jsonRequest("POST", "/v1/batches", def), nil); code != 200 {
		t.Errorf("create again: %d, want 200", code)
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"name": "migration été", "target": "ok"}, 409, "conflict"},
		{map[string]any{"name": "a/b", "target": "ok"}, 400, "bad_request"},
		{map[string]any{"name": "", "target": "ok"}, 400, "bad_request"},
		{map[string]any{"name": "x", "target": "nope"}, 422, "unknown_target"},
		{map[string]any{"name": "x", "target": "ok", "colour": "red"}, 400, "bad_request"},
	} {
		var e apiError
		if code := p.do(p.jsonRequest("POST", "/v1/batches", c.body), &e); code != c.status || e.Error.Code != c.code {
			t.Errorf("create %v: %d %+v, want %d %s", c.body, code, e.Error, c.status, c.code)
		}
	}

	// Uploads naming the batch get its target and parameters; one naming
	// another target is refused; a label batch still needs a target.
	esc := url.PathEscape("migration été")
	var sent []string
	for i := range 6 {
		q := url.Values{"batch": {"migration été"}, "path": {fmt.Sprintf("dossier/été/f%d.txt", i)}}
		if i == 0 {
			q.Set("param.dept", "Finance")
		}
		code, body := p.rawUpload("", file{fmt.Sprintf("f%d.txt", i), []byte(strings.Repeat("x", i+1))}, q)
		if code != 202 {
			t.Fatalf("upload naming the batch: %d %s", code, body)
		}
		var out struct{ Jobs []jobView }
		_ = json.Unmarshal(body, &out)
		j := out.Jobs[0]
		wantDept := map[bool]string{true: "Finance", false: "HR"}[i == 0]
		if j.Target != "refuse" || j.Params["dept"] != wantDept || j.Batch != "migration été" {
			t.Errorf("job %d: target %s params %v batch %q", i, j.Target, j.Params, j.Batch)
		}
		sent = append(sent, j.ID)
	}
	if code, body := p.rawUpload("ok", file{"x", []byte("x")}, url.Values{"batch": {"migration été"}}); code != 422 || !strings.Contains(string(body), "batch_target_mismatch") {
		t.Errorf("upload to another target than the batch's: %d %s", code, body)
	}
	if code, _ := p.rawUpload("", file{"x", []byte("x")}, url.Values{"batch": {"just a label"}}); code != 400 {
		t.Errorf("label batch without target: %d, want 400", code)
	}
	// Multipart too: the batch's target applies when the field comes first.
	if code := p.do(p.multipartRequest(map[string]string{"batch": "migration été", "path": "m/one.txt"}, file{"one.txt", []byte("1")}), nil); code != 202 {
		t.Errorf("multipart naming the batch: %d", code)
	}
	labelled := p.uploadWith(map[string]string{"target": "ok", "batch": "just a label"}, file{"l.txt", []byte("label")})
	final := p.waitFinal(append(sent, ids(labelled)...), 30*time.Second)
	if final[labelled[0].ID].Status != jobs.StatusSuccess {
		t.Fatalf("label batch job: %+v", final[labelled[0].ID])
	}

	// The summary counts what happened.
	var sum apitypes.BatchSummary
	waitFor(t, 30*time.Second, func() bool {
		p.get("/v1/batches/"+esc, &sum)
		return sum.Done() && sum.Total.Files == 7
	})
	if f := sum.ByStatus[apitypes.StatusFailed]; f.Files != 7 || f.Bytes != 1+2+3+4+5+6+1 || sum.Target != "refuse" || sum.Params["dept"] != "HR" {
		t.Errorf("summary: %+v", sum)
	}
	if sum.StartedAt == nil || sum.UpdatedAt == nil || sum.FilesPerSecond <= 0 || sum.ETASeconds != nil {
		t.Errorf("summary times and rate: started %v updated %v rate %v eta %v", sum.StartedAt, sum.UpdatedAt, sum.FilesPerSecond, sum.ETASeconds)
	}
	var list apitypes.BatchPage
	p.get("/v1/batches?limit=1", &list)
	if len(list.Batches) != 1 || list.Batches[0].Name != "just a label" || list.NextCursor == "" {
		t.Errorf("list page 1: %+v", list)
	}
	p.get("/v1/batches?cursor="+url.QueryEscape(list.NextCursor), &list)
	if len(list.Batches) != 1 || list.Batches[0].Name != "migration été" || list.NextCursor != "" {
		t.Errorf("list page 2: %+v", list)
	}

	// The report: one row per file, with its path and why it failed.
	code, body := p.raw("GET", "/v1/batches/"+esc+"/report")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != 200 || err != nil || len(rows) != 8 {
		t.Fatalf("csv report: %d %v %d rows:\n%s", code, err, len(rows), body)
	}
	if got := strings.Join(rows[0], ","); got != "path,job_id,status,attempts,remote_id,sha256,size,last_error,finished_at" {
		t.Errorf("csv header %s", got)
	}
	var paths []string
	for _, r := range rows[1:] {
		paths = append(paths, r[0])
		if r[2] != "FAILED" || r[3] != "1" || !strings.Contains(r[7], "422") || len(r[5]) != 64 || r[8] == "" {
			t.Errorf("csv row %q", r)
		}
	}
	slices.Sort(paths)
	if want := []string{"dossier/été/f0.txt", "dossier/été/f1.txt", "dossier/été/f2.txt", "dossier/été/f3.txt", "dossier/été/f4.txt", "dossier/été/f5.txt", "m/one.txt"}; !slices.Equal(paths, want) {
		t.Errorf("report paths %q", paths)
	}
	var jrows []apitypes.ReportRow
	if code := p.get("/v1/batches/"+esc+"/report?format=json&status=FAILED", &jrows); code != 200 || len(jrows) != 7 {
		t.Errorf("json report: %d %d rows", code, len(jrows))
	}
	if code := p.get("/v1/batches/"+esc+"/report?format=json&status=SUCCESS", &jrows); code != 200 || len(jrows) != 0 {
		t.Errorf("json report of SUCCESS: %d %d rows", code, len(jrows))
	}
	for _, bad := range []string{"/report?format=xml", "/report?status=DONE"} {
		if code, _ := p.raw("GET", "/v1/batches/"+esc+bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	for _, path := range []string{"/v1/batches/nope", "/v1/batches/nope/report", "/v1/batches/nope/keys"} {
		if code, _ := p.raw("GET", path); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}

	// Re-queue: by error substring, nothing that does not match.
	var rq struct{ Requeued int }
	if code := p.do(p.jsonRequest("POST", "/v1/batches/"+esc+"/retry", map[string]string{"error": "no such error"}), &rq); code != 200 || rq.Requeued != 0 {
		t.Errorf("retry non-matching: %d %+v", code, rq)
	}
	if code := p.post("/v1/batches/"+esc+"/retry?error=HTTP%20422", &rq); code != 200 || rq.Requeued != 7 {
		t.Errorf("retry matching: %d %+v", code, rq)
	}
	final = p.waitFinal(sent, 30*time.Second)
	for id, j := range final {
		as, _ := p.jobs.Attempts(t.Context(), jobs.AllTenants(), id)
		if j.Status != jobs.StatusFailed || len(as) != 2 {
			t.Errorf("re-queued job %s: %s with %d attempts recorded, want FAILED again after 2", id, j.Status, len(as))
		}
	}
	waitFor(t, 30*time.Second, func() bool {
		p.get("/v1/batches/"+esc, &sum)
		return sum.Done() && sum.ByStatus[apitypes.StatusFailed].Files == 7
	})

	// POST /v1/jobs/retry: a filter or all=true, not neither, not both.
	for _, c := range []struct {
		path string
		body any
		code int
		n    int
	}{
		{"/v1/jobs/retry", nil, 400, 0},
		{"/v1/jobs/retry", map[string]any{"all": true, "target": "refuse"}, 400, 0},
		{"/v1/jobs/retry", map[string]any{"target": "nope"}, 422, 0},
		{"/v1/jobs/retry", map[string]any{"target": "refuse", "batch": "migration été", "error": "zzz"}, 200, 0},
		{"/v1/jobs/retry?target=ok", nil, 200, 0},
		{"/v1/jobs/retry", map[string]any{"target": "refuse", "error": "422"}, 200, 7},
	} {
		var out struct{ Requeued int }
		if code := p.do(p.jsonRequest("POST", c.path, c.body), &out); code != c.code || out.Requeued != c.n {
			t.Errorf("%s %v: %d %+v, want %d with %d", c.path, c.body, code, out, c.code, c.n)
		}
	}
	p.waitFinal(sent, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool {
		p.get("/v1/batches/"+esc, &sum)
		return sum.Done()
	})
	if code := p.post("/v1/jobs/retry?all=true", &rq); code != 200 || rq.Requeued != 7 {
		t.Errorf("retry all: %d %+v", code, rq)
	}
}

func TestTargetCheck(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, `
targets:
  - {name: bw, kind: blueworks, base_url: "http://127.0.0.1:1", client_id: c, client_secret: s, max_file_bytes: 100, params: {locationField: policy}}
`, pipelineOptions{noWorker: true})
	var e apiError
	if code := p.do(p.jsonRequest("POST", "/v1/targets/bw/check", map[string]any{"params": map[string]string{}}), &e); code != 422 || e.Error.Code != "invalid_params" || !strings.Contains(e.Error.Message, "parentId") {
		t.Errorf("missing param: %d %+v", code, e.Error)
	}
	var ok struct {
		OK     bool
		Params map[string]string
	}
	if code := p.do(p.jsonRequest("POST", "/v1/targets/bw/check", map[string]any{"params": map[string]string{"parentId": "P"}, "size": 100}), &ok); code != 200 || !ok.OK || ok.Params["locationField"] != "policy" {
		t.Errorf("complete params: %d %+v", code, ok)
	}
	if code := p.do(p.jsonRequest("POST", "/v1/targets/bw/check", map[string]any{"params": map[string]string{"parentId": "P"}, "size": 101}), &e); code != 413 || e.Error.Code != "too_large" {
		t.Errorf("over the limit: %d %+v", code, e.Error)
	}
	// A batch's params count as defaults.
	if code := p.do(p.jsonRequest("POST", "/v1/batches", map[string]any{"name": "b", "target": "bw", "params": map[string]string{"parentId": "P"}}), nil); code != 201 {
		t.Fatalf("create batch: %d", code)
	}
	if code := p.do(p.jsonRequest("POST", "/v1/targets/bw/check", map[string]any{"batch": "b"}), &ok); code != 200 || ok.Params["parentId"] != "P" {
		t.Errorf("with the batch's params: %d %+v", code, ok)
	}
	if code := p.do(p.jsonRequest("POST", "/v1/targets/nope/check", nil), &e); code != 422 || e.Error.Code != "unknown_target" {
		t.Errorf("unknown target: %d %+v", code, e.Error)
	}
}
