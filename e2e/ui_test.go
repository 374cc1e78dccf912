package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/ui"
	"github.com/ferry-relay/ferry/ui/sessions"
)

// newDashboard serves the dashboard over the pipeline's API (through the
// contract check, so the dashboard's own API calls are validated too).
func newDashboard(t *testing.T, p *pipeline) *httptest.Server {
	t.Helper()
	return newDashboardOver(t, p, p.api.Config.Handler, ui.Config{Refresh: 500 * time.Millisecond})
}

// newDashboardOver serves a dashboard over the API handler apiHandler,
// with its sessions in the pipeline's schema.
func newDashboardOver(t *testing.T, p *pipeline, apiHandler http.Handler, cfg ui.Config) *httptest.Server {
	t.Helper()
	d, err := ui.New(cfg, apiHandler, sessions.NewStore(p.pool, sessions.Config{PerKey: 5}), p.log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", d.Handler())
	mux.Handle("/", apiHandler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	s, _ := io.ReadAll(resp.Body)
	return resp, string(s)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%.1500s", html)
	}
	return m[1]
}

// login logs the browser in with key and returns the session's CSRF token.
func (b *browser) login(key string) string {
	b.t.Helper()
	_, html := b.do("GET", "/ui/", nil, nil)
	if !strings.Contains(html, `type="password"`) || !strings.Contains(html, `name="key"`) {
		b.t.Fatalf("no login form:\n%.1500s", html)
	}
	resp, _ := b.do("POST", "/ui/login", url.Values{"key": {key}, "csrf": {csrfOf(b.t, html)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("login: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "ferry_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Value == "" {
		b.t.Fatalf("session cookie: %+v", session)
	}
	_, html = b.do("GET", "/ui/", nil, nil)
	return csrfOf(b.t, html)
}

// TestDashboardPages drives the dashboard as a browser without script
// would: log in, read every page, retry one failure group, log out.
func TestDashboardPages(t *testing.T) {
	t.Parallel()
	p, pt, ids := failingBatch(t, "ui batch")
	p.waitFinal(ids, 30*time.Second)
	d := newDashboard(t, p)
	b := newBrowser(t, d.URL)

	// A wrong key is refused; pages need a session.
	_, html := b.do("GET", "/ui/", nil, nil)
	if resp, _ := b.do("POST", "/ui/login", url.Values{"key": {"nope"}, "csrf": {csrfOf(t, html)}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong key: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/ui/jobs", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/?next=") {
		t.Errorf("jobs without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	csrf := b.login(p.key)

	_, html = b.do("GET", "/ui/", nil, nil)
	for _, want := range []string{"dms", "Overview", "ui batch", "<svg class=\"spark\""} {
		if !strings.Contains(html, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	resp, html := b.do("GET", "/ui/batches/"+url.PathEscape("ui batch"), nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(html, `HTTP 422: file &#34;…&#34; refused`) || strings.Count(html, "Retry these") != 2 || !strings.Contains(html, `<svg class="chart"`) {
		t.Fatalf("batch page: %d\n%.3000s", resp.StatusCode, html)
	}
	// The live part alone, for the script.
	_, live := b.do("GET", "/ui/batches/"+url.PathEscape("ui batch"), nil, http.Header{"X-Ferry-Live": {"1"}})
	if strings.Contains(live, "<html") || !strings.Contains(live, "Failures by reason") {
		t.Errorf("live part: %.500s", live)
	}
	// The CSV report comes through.
	resp, csv := b.do("GET", "/ui/batches/"+url.PathEscape("ui batch")+"/report.csv", nil, nil)
	if resp.StatusCode != 200 || strings.Count(csv, "\n") != 10 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("report: %d %q", resp.StatusCode, csv)
	}

	// A form without the CSRF token, or from another site, is refused.
	var fg apitypes.FailureGroups
	p.get("/v1/batches/"+url.PathEscape("ui batch")+"/failures", &fg)
	if len(fg.Groups) != 2 || fg.Groups[0].Count != 4 {
		t.Fatalf("failure groups: %+v", fg.Groups)
	}
	group := fg.Groups[0].Group
	retry := "/ui/batches/" + url.PathEscape("ui batch") + "/retry"
	if resp, _ := b.do("POST", retry, url.Values{"group": {group}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retry without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", retry, url.Values{"group": {group}, "csrf": {csrf}}, http.Header{"Origin": {"http://evil.example"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retry from another origin: %d", resp.StatusCode)
	}
	pt.fixed.Store(true)
	resp, _ = b.do("POST", retry, url.Values{"group": {group}, "csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "4+failed+jobs+re-queued") {
		t.Fatalf("retry these: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitFor(t, 30*time.Second, func() bool {
		var sum apitypes.BatchSummary
		p.get("/v1/batches/"+url.PathEscape("ui batch"), &sum)
		return sum.ByStatus[apitypes.StatusSuccess].Files == 7 && sum.ByStatus[apitypes.StatusFailed].Files == 2
	})

	// Jobs list with filters, and a job page.
	_, html = b.do("GET", "/ui/jobs?status=FAILED&filename=invoice-5", nil, nil)
	if strings.Count(html, `href="/ui/jobs/`) != 1 || !strings.Contains(html, "Invoice-5.pdf") {
		t.Errorf("filtered jobs list:\n%.3000s", html)
	}
	_, html = b.do("GET", "/ui/jobs/"+ids[0], nil, nil)
	for _, want := range []string{"Invoice-0.pdf", "#1 FAILED", "#1 SUCCESS", "HTTP 422", "SHA-256"} {
		if !strings.Contains(html, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	// Paging: two jobs a page is not offered, but the cursor is: page 1
	// of 50 holds all nine.
	_, html = b.do("GET", "/ui/jobs?batch="+url.QueryEscape("ui batch"), nil, nil)
	if strings.Count(html, `href="/ui/jobs/`) != 9 || strings.Contains(html, "Next page") {
		t.Errorf("jobs list of the batch: %d links", strings.Count(html, `href="/ui/jobs/`))
	}

	// A target paused for refused credentials shows why, with a button to
	// probe it now.
	if _, err := targetstate.NewStore(p.pool, "test").Pause(t.Context(), "dms", "send: HTTP 401: token refused", time.Hour); err != nil {
		t.Fatal(err)
	}
	_, html = b.do("GET", "/ui/", nil, nil)
	for _, want := range []string{"paused: credentials refused", "send: HTTP 401: token refused", "Probe now", "next probe"} {
		if !strings.Contains(html, want) {
			t.Errorf("overview with a paused target lacks %q", want)
		}
	}
	resp, body := b.do("POST", "/ui/targets/dms/resume", url.Values{"csrf": {csrf}}, http.Header{"X-Ferry-Live": {"1"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "will be probed now") {
		t.Errorf("probe now: %d %q", resp.StatusCode, body)
	}

	// Logging out ends the session.
	if resp, _ := b.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/ui/jobs", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("jobs after logout: %d", resp.StatusCode)
	}
}
