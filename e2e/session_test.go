package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/ui"
)

// secondAPI is another API process of the pipeline's installation: its
// own server, key cache and limits over the same schema, storage and
// queue.
func secondAPI(p *pipeline) http.Handler {
	keys := apikeys.NewStore(p.pool)
	return api.New(api.Config{}, api.Deps{
		Jobs: p.jobs, Keys: ui.Keys(apikeys.NewCache(keys, 0)), KeyAdmin: keys, Audit: p.audit,
		Objects: p.objects, Enqueue: enqueue.New(p.jobs, p.queue, p.log), Targets: p.targets,
		States: targetstate.NewStore(p.pool, "api-2"), Log: p.log,
	}).Handler()
}

// on returns a browser that shares b's cookies but speaks to base: the
// same browser behind a round-robin proxy.
func (b *browser) on(base string) *browser {
	return &browser{t: b.t, base: base, hc: b.hc}
}

// status is the answer's code to GET path.
func (b *browser) status(path string) int {
	resp, _ := b.do("GET", path, nil, nil)
	return resp.StatusCode
}

// TestSessionOnEveryProcess: a session made through one API process works
// on another; a logout on one is immediate on the other; revoking the key
// ends the session; logins of another key never evict it (issue 20).
func TestSessionOnEveryProcess(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, `
targets:
  - {name: dms, kind: http, url: "http://127.0.0.1:1/", max_attempts: 1}
`, pipelineOptions{noWorker: true})
	cfg := ui.Config{LoginsPerAddress: 1000, LoginsPerKey: 1000}
	a := newBrowser(t, newDashboardOver(t, p, p.api.Config.Handler, cfg).URL)
	b := a.on(newDashboardOver(t, p, secondAPI(p), cfg).URL)

	csrf := a.login(p.key)
	for _, path := range []string{"/ui/", "/ui/jobs"} {
		if code := b.status(path); code != http.StatusOK {
			t.Fatalf("GET %s on the other process: %d, want 200", path, code)
		}
	}
	_, html := b.do("GET", "/ui/", nil, nil)
	if !strings.Contains(html, "Log out") || csrfOf(t, html) != csrf {
		t.Fatalf("the other process shows another session:\n%.1500s", html)
	}
	// A form made on one process is accepted on the other.
	if resp, _ := b.do("POST", "/ui/targets/dms/resume", url.Values{"csrf": {csrf}}, http.Header{"X-Ferry-Live": {"1"}}); resp.StatusCode != http.StatusOK {
		t.Errorf("an action on the other process: %d", resp.StatusCode)
	}

	// Logins of another key, many more than a key may keep, leave this
	// session alone.
	noisyKey, _, err := p.keys.CreateKey(t.Context(), apikeys.Spec{Name: "noisy"})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		newBrowser(t, b.base).login(noisyKey)
	}
	if code := a.status("/ui/jobs"); code != http.StatusOK {
		t.Fatalf("after 12 logins of another key: %d", code)
	}
	var kept int
	if err := p.pool.QueryRow(t.Context(), `SELECT count(*) FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id WHERE k.name = 'noisy'`).Scan(&kept); err != nil || kept != 5 {
		t.Errorf("the noisy key keeps %d sessions (%v), want its bound 5", kept, err)
	}

	// Logging out on one process ends the session on the other at once.
	if resp, _ := a.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code := b.status("/ui/jobs"); code != http.StatusSeeOther {
		t.Errorf("the other process after logout: %d, want 303 to the login form", code)
	}

	// Revoking the key ends its session on every process at once.
	opsKey, _, err := p.keys.CreateKey(t.Context(), apikeys.Spec{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	a.login(opsKey)
	if code := b.status("/ui/jobs"); code != http.StatusOK {
		t.Fatalf("new session on the other process: %d", code)
	}
	if _, err := p.keys.Revoke(t.Context(), "ops"); err != nil {
		t.Fatal(err)
	}
	for _, br := range []*browser{a, b} {
		if code := br.status("/ui/jobs"); code != http.StatusSeeOther {
			t.Errorf("%s after revocation: %d, want 303 to the login form", br.base, code)
		}
	}
}

// TestLoginRateLimit: logins beyond the rate per client address answer
// 429 with Retry-After, and start no session.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, `
targets:
  - {name: dms, kind: http, url: "http://127.0.0.1:1/", max_attempts: 1}
`, pipelineOptions{noWorker: true})
	base := newDashboardOver(t, p, p.api.Config.Handler, ui.Config{LoginsPerAddress: 3, LoginsPerKey: 1000}).URL
	for i := range 4 {
		br := newBrowser(t, base)
		_, html := br.do("GET", "/ui/", nil, nil)
		resp, _ := br.do("POST", "/ui/login", url.Values{"key": {p.key}, "csrf": {csrfOf(t, html)}}, nil)
		want := http.StatusSeeOther
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("login %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if i == 3 {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			for _, c := range resp.Cookies() {
				if c.Name == "ferry_session" && c.Value != "" {
					t.Error("a refused login set a session")
				}
			}
		}
	}
	// Per key as well: another address, the same key.
	base = newDashboardOver(t, p, p.api.Config.Handler, ui.Config{LoginsPerAddress: 1000, LoginsPerKey: 2}).URL
	codes := []int{}
	for range 3 {
		br := newBrowser(t, base)
		_, html := br.do("GET", "/ui/", nil, nil)
		resp, _ := br.do("POST", "/ui/login", url.Values{"key": {p.key}, "csrf": {csrfOf(t, html)}}, nil)
		codes = append(codes, resp.StatusCode)
	}
	if codes[2] != http.StatusTooManyRequests {
		t.Errorf("logins with one key: %v, want the third refused (429)", codes)
	}
}
