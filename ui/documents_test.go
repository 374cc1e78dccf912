package ui

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/ui/sessions"
)

// fakeAPI answers the API routes the dashboard's document pages, job
// pages and batch page read, with the wire types of issue 21 (the real
// documents routes come from docs-core; e2e drives the dashboard over the
// real API). It records each request.
type fakeAPI struct {
	mu       sync.Mutex
	requests []string
}

var (
	t0        = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	delivered = t0.Add(90 * time.Second)
	sha1      = strings.Repeat("a1", 32)
	sha2      = strings.Repeat("b2", 32)
	sha3      = strings.Repeat("c3", 32)
	theDoc    = apitypes.Document{ID: "doc-1", Tenant: "default", Target: "archive", Key: "reports/2026/été.pdf", State: "active",
		Remote: map[string]string{"etag": `"v3-etag"`, "url": "https://dms.example/docs/reports%2F2026%2F%C3%A9t%C3%A9.pdf"}, Versions: 3,
		Current:   &apitypes.DocumentVersion{Version: 1, Job: "job-1", Op: "put", Status: apitypes.StatusSuccess, SHA256: sha1, Size: 2048, AcceptedAt: t0, DeliveredAt: &delivered},
		CreatedAt: t0, UpdatedAt: t0.Add(5 * time.Minute),
		History: []apitypes.DocumentVersion{
			{Version: 1, Job: "job-1", Op: "put", Status: apitypes.StatusSuccess, SHA256: sha1, Size: 2048, AcceptedAt: t0, DeliveredAt: &delivered, RemoteVersion: "docv-111"},
			{Version: 2, Job: "job-2", Op: "put", Status: apitypes.StatusSuperseded, SHA256: sha2, Size: 4096, AcceptedAt: t0.Add(time.Minute)},
			{Version: 3, Job: "job-3", Op: "put", Status: apitypes.StatusQueued, SHA256: sha3, Size: 8192, AcceptedAt: t0.Add(2 * time.Minute)},
		}}
	theJob = apitypes.Job{ID: "job-2", Target: "archive", Batch: "sync-1", Filename: "été.pdf", Size: 4096, SHA256: sha2,
		Status: apitypes.StatusSuperseded, MaxAttempts: 5, CreatedAt: t0, UpdatedAt: t0, Document: "doc-1", DocumentKey: theDoc.Key, Version: 2}
)

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r.Method+" "+r.URL.RequestURI())
	a.mu.Unlock()
	list := theDoc
	list.History = nil
	other := apitypes.Document{ID: "doc-2", Target: "archive", Key: "reports/2026/old.pdf", State: "deleted", Versions: 2, CreatedAt: t0, UpdatedAt: t0}
	switch p := r.Method + " " + r.URL.Path; p {
	case "GET /v1/targets":
		send(w, apitypes.TargetList{Targets: []apitypes.Target{{Name: "archive", Kind: "http", State: "ok"}, {Name: "wf", Kind: "workfront", State: "ok"}}})
	case "GET /v1/documents":
		send(w, apitypes.DocumentList{Documents: []apitypes.Document{list, other}, NextCursor: other.Key})
	case "GET /v1/documents/doc-1":
		send(w, theDoc)
	case "DELETE /v1/documents/doc-1":
		send(w, apitypes.Job{ID: "job-4", Status: apitypes.StatusQueued, Document: "doc-1", Version: 4})
	case "GET /v1/jobs/job-2":
		send(w, theJob)
	case "GET /v1/jobs/job-2/attempts":
		send(w, apitypes.AttemptList{})
	case "GET /v1/jobs":
		send(w, apitypes.JobList{Jobs: []apitypes.Job{theJob}})
	case "GET /v1/batches/sync-1":
		send(w, apitypes.BatchSummary{Name: "sync-1", Target: "archive", Total: apitypes.Count{Files: 3, Bytes: 14336}, Final: apitypes.Count{Files: 2},
			ByStatus: map[apitypes.Status]apitypes.Count{apitypes.StatusSuccess: {Files: 1, Bytes: 2048}, apitypes.StatusSuperseded: {Files: 1, Bytes: 4096}, apitypes.StatusQueued: {Files: 1, Bytes: 8192}},
			Pending:  apitypes.Count{Files: 1}})
	case "GET /v1/activity":
		send(w, apitypes.Activity{WindowSeconds: 3600})
	case "GET /v1/batches":
		sum := apitypes.BatchSummary{Name: "sync-0", Target: "archive", Total: apitypes.Count{Files: 4}, Final: apitypes.Count{Files: 4},
			ByStatus: map[apitypes.Status]apitypes.Count{apitypes.StatusSuccess: {Files: 3}, apitypes.StatusSuperseded: {Files: 1}}}
		send(w, apitypes.BatchPage{Batches: []apitypes.BatchSummary{sum}})
	case "GET /v1/batches/sync-1/failures":
		send(w, apitypes.FailureGroups{})
	case "GET /v1/batches/sync-1/throughput":
		send(w, apitypes.Throughput{})
	default:
		w.WriteHeader(http.StatusNotFound)
		send(w, apitypes.Error{Error: apitypes.ErrorDetail{Code: "not_found", Message: "no " + p}})
	}
}

func send(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// dashboardOver serves the dashboard over api, with a session of a key
// of role in a real Postgres schema; it returns the server and the
// session's cookie.
func dashboardOver(t *testing.T, api http.Handler, role apikeys.Role) (*httptest.Server, *http.Cookie) {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	_, info, err := apikeys.NewStore(pool).CreateKey(ctx, apikeys.Spec{Name: "ops", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	store := sessions.NewStore(pool, sessions.Config{})
	tok, err := store.Create(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{}, api, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv, &http.Cookie{Name: sessionCookie, Value: tok}
}

func get(t *testing.T, srv *httptest.Server, c *http.Cookie, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

func mustContain(t *testing.T, page, html string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(html, w) {
			t.Errorf("%s lacks %s", page, w)
		}
	}
}

// TestDocumentPages: the documents list forwards its filters and pages by
// the API's cursor; a document's page shows its versions newest first
// (version, status, short SHA-256, accepted, delivered, remote version)
// and what the target reported; a job of a document links to it; the
// batch page, the overview and the jobs filter list SUPERSEDED; an operator can delete
// the document, an uploader is not offered to.
func TestDocumentPages(t *testing.T) {
	api := &fakeAPI{}
	srv, cookie := dashboardOver(t, api, apikeys.RoleOperator)

	html := get(t, srv, cookie, "/ui/documents?target=archive&key_prefix=reports/&state=deleted&batch=sync-1")
	mustContain(t, "the documents list", html,
		`<a href="/ui/documents/doc-1">reports/2026/été.pdf</a>`, `state-doc-deleted`, `v1 <code>a1a1a1a1a1a1</code>`,
		`href="/ui/documents?batch=sync-1&amp;cursor=reports%2F2026%2Fold.pdf&amp;key_prefix=reports%2F&amp;state=deleted&amp;target=archive"`,
		`<option selected>archive</option>`, `aria-current="page">Documents</a>`)
	if want := "GET /v1/documents?batch=sync-1&key_prefix=reports%2F&limit=50&state=deleted&target=archive"; !contains(api.requests, want) {
		t.Errorf("the list asked %v, want %s", api.requests, want)
	}

	html = get(t, srv, cookie, "/ui/documents/doc-1")
	mustContain(t, "the document page", html, "<h1>reports/2026/été.pdf</h1>", "docv-111", "v3-etag", "Delete at the target",
		`status-superseded">SUPERSEDED`, "b2b2b2b2b2b2", "accepted <time", "delivered <time", "2026-12-07 09:01:30Z", `href="/ui/jobs/job-2"`)
	order := regexp.MustCompile(`<strong>v(\d) content</strong>`).FindAllStringSubmatch(html, -1)
	if len(order) != 3 || order[0][1] != "3" || order[2][1] != "1" {
		t.Errorf("the timeline is not newest first: %v", order)
	}

	html = get(t, srv, cookie, "/ui/jobs/job-2")
	mustContain(t, "the job page", html, `<a href="/ui/documents/doc-1">reports/2026/été.pdf</a>, version 2`, `status-superseded`)
	html = get(t, srv, cookie, "/ui/jobs")
	mustContain(t, "the jobs list", html, `<option value="SUPERSEDED">SUPERSEDED</option>`, `class="version" href="/ui/documents/doc-1"`)
	html = get(t, srv, cookie, "/ui/")
	if row := regexp.MustCompile(`(?s)<th scope="row"><a href="/ui/batches/sync-0">.*?</tr>`).FindString(html); !strings.Contains(row,
		`<td class="n">3</td>`) || !strings.Contains(row, "<td class=\"n\">0</td>\n<td class=\"n\">1</td>") || !strings.Contains(html, ">Superseded</th>") {
		t.Errorf("the overview's finished batch lacks its SUPERSEDED count: %s", row)
	}
	html = get(t, srv, cookie, "/ui/batches/sync-1")
	mustContain(t, "the batch page", html, `status=SUPERSEDED"><span class="status status-superseded">SUPERSEDED</span>`)

	// The delete button posts with the session's CSRF token.
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(get(t, srv, cookie, "/ui/documents/doc-1"))[1]
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/documents/doc-1/delete", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "Delete+recorded%3A+version+4") {
		t.Errorf("delete: %d %s", resp.StatusCode, loc)
	}
	if !contains(api.requests, "DELETE /v1/documents/doc-1") {
		t.Errorf("no DELETE reached the API: %v", api.requests)
	}

	srv, cookie = dashboardOver(t, &fakeAPI{}, apikeys.RoleUploader)
	if html := get(t, srv, cookie, "/ui/documents/doc-1"); strings.Contains(html, "Delete at the target") {
		t.Error("an uploader's page offers the delete")
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
