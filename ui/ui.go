// Package ui is ferry's web dashboard, served at /ui/ by `ferry serve` and
// `ferry api`: for the people running a migration, what is delivered,
// what is failing and why, which target is down, and what can be retried.
//
// It is server-rendered with html/template; its stylesheet and its small
// script are embedded (no CDN, no build step). A browser logs in with an
// API key, which the dashboard exchanges for a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS); every form that changes something
// carries the session's CSRF token. Sessions are in Postgres (package
// sessions), so every API process behind a proxy knows them; the API key
// itself is never kept. The dashboard reads and acts through the HTTP API
// in this process (package client over an in-process transport), as the
// session's key (Keys), so a key sees and does in the dashboard exactly
// what it may through the API: its tenant and its role apply unchanged.
//
// Pages refresh their figures every few seconds without reloading: the
// script asks for the page's live part and swaps it in.
package ui

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/ui/sessions"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	RefreshDefault = 3 * time.Second
	// LoginsPerMinuteDefault bounds the logins a client address may try,
	// and those with one key, per minute and process.
	LoginsPerMinuteDefault = 10
)

// Config configures the dashboard.
type Config struct {
	// Refresh is how often pages refresh their figures; RefreshDefault if
	// zero.
	Refresh time.Duration
	// LoginsPerAddress and LoginsPerKey bound the logins tried per minute
	// from one client address and with one key (beyond them: HTTP 429);
	// LoginsPerMinuteDefault if zero. Behind a proxy every browser has the
	// proxy's address.
	LoginsPerAddress int
	LoginsPerKey     int
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Refresh <= 0 {
		c.Refresh = RefreshDefault
	}
	if c.LoginsPerAddress <= 0 {
		c.LoginsPerAddress = LoginsPerMinuteDefault
	}
	if c.LoginsPerKey <= 0 {
		c.LoginsPerKey = LoginsPerMinuteDefault
	}
	return c
}

// UI serves the dashboard.
type UI struct {
	cfg      Config
	api      http.Handler
	hc       *http.Client
	sessions *sessions.Store
	logins   *loginLimits
	pages    map[string]*template.Template
	log      *slog.Logger
}

// New returns the dashboard over api, the API's handler (api.Server's
// Handler), with its sessions in store. The API must check keys through
// Keys, or no session can call it.
func New(cfg Config, api http.Handler, store *sessions.Store, log *slog.Logger) (*UI, error) {
	cfg = cfg.WithDefaults()
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &UI{cfg: cfg, api: api, hc: &http.Client{Transport: inProcess{api: api}},
		sessions: store, logins: newLoginLimits(cfg.LoginsPerAddress, cfg.LoginsPerKey), pages: pages, log: log}, nil
}

// Handler returns the dashboard's routes, all under /ui/.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/{$}", u.home)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.withSession(u.logout))
	mux.HandleFunc("POST /ui/targets/{name}/resume", u.withSession(u.resumeTarget))
	mux.HandleFunc("GET /ui/batches/{name}", u.withSession(u.batchPage))
	mux.HandleFunc("GET /ui/batches/{name}/report.csv", u.withSession(u.batchReport))
	mux.HandleFunc("POST /ui/batches/{name}/retry", u.withSession(u.retryBatch))
	mux.HandleFunc("GET /ui/jobs", u.withSession(u.jobsPage))
	mux.HandleFunc("GET /ui/jobs/{id}", u.withSession(u.jobPage))
	mux.HandleFunc("POST /ui/jobs/{id}/retry", u.withSession(u.jobAction))
	mux.HandleFunc("POST /ui/jobs/{id}/cancel", u.withSession(u.jobAction))
	mux.HandleFunc("GET /ui/documents", u.withSession(u.documentsPage))
	mux.HandleFunc("GET /ui/documents/{id}", u.withSession(u.documentPage))
	mux.HandleFunc("POST /ui/documents/{id}/delete", u.withSession(u.deleteDocument))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusNotFound, "error", nil, page{Title: "Not found", Error: "There is no such page."})
	})
	return secureHeaders(mux)
}

// request is a dashboard request with its session and its API client.
type request struct {
	r       *http.Request
	token   string
	session *session
	api     *client.Client
}

// ctx is the context of the request's API calls: the browser's address,
// and the session's identity (see Keys).
func (q *request) ctx() context.Context {
	return withIdentity(withRemoteAddr(q.r.Context(), q.r.RemoteAddr), q.session.who)
}

// withSession requires a session (else the login form) and, for a POST,
// its CSRF token.
func (u *UI) withSession(h func(http.ResponseWriter, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, token, err := u.readSession(r)
		if errors.Is(err, sessions.ErrNotFound) {
			if r.Method != http.MethodGet || isLive(r) {
				w.Header().Set("X-Ferry-Login", "1")
				http.Error(w, "log in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			if r.Context().Err() == nil {
				u.log.Error("dashboard: read session", "err", err)
			}
			http.Error(w, "the sessions could not be read; this page retries by itself", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) || !sameToken(r.PostFormValue("csrf"), se.csrf) {
				http.Error(w, "this form is stale or came from another site: reload the page", http.StatusForbidden)
				return
			}
		}
		api, err := client.New("http://ferry.in-process", sessionBearer, u.hc)
		if err != nil {
			u.log.Error("dashboard: API client", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h(w, &request{r: r, token: token, session: se, api: api})
	}
}

// sameOrigin refuses a POST whose Origin names another site. Browsers
// send Origin with every POST; its absence (an old client, curl) is left
// to the CSRF token.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+r.Host
}

// isLive reports whether the script asks for the live part of a page.
func isLive(r *http.Request) bool { return r.Header.Get("X-Ferry-Live") == "1" }

// apiError turns an error of the API into the page's answer: a key no
// longer valid ends the session.
func (u *UI) apiError(w http.ResponseWriter, q *request, err error) {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.StatusCode == http.StatusUnauthorized:
		// Best effort: the key no longer works, so neither does the session.
		_ = u.sessions.Delete(context.WithoutCancel(q.r.Context()), q.token)
		setCookie(w, q.r, sessionCookie, "", -1)
		if isLive(q.r) || q.r.Method != http.MethodGet {
			w.Header().Set("X-Ferry-Login", "1")
			http.Error(w, "log in again", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, q.r, "/ui/", http.StatusSeeOther)
	case errors.As(err, &ce) && ce.StatusCode == http.StatusForbidden:
		u.render(w, q.r, http.StatusForbidden, "error", q, page{Title: "Not allowed", Error: ce.Message})
	case errors.As(err, &ce) && ce.StatusCode == http.StatusNotFound:
		u.render(w, q.r, http.StatusNotFound, "error", q, page{Title: "Not found", Error: ce.Message})
	case errors.As(err, &ce) && ce.StatusCode < 500:
		u.render(w, q.r, ce.StatusCode, "error", q, page{Title: "Refused", Error: ce.Message})
	default:
		if q.r.Context().Err() == nil {
			u.log.Error("dashboard: API call failed", "path", q.r.URL.Path, "err", err)
		}
		u.render(w, q.r, http.StatusBadGateway, "error", q, page{Title: "Unavailable", Error: "The API could not answer; see the server log. This page retries by itself."})
	}
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(int(d/time.Second)))
		h.ServeHTTP(w, r)
	})
}

// secureHeaders sets what every dashboard answer carries: a strict
// content security policy (only this origin's script and style; no inline
// script), no framing, no sniffing, no referrer beyond the origin.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
