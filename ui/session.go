package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

// Cookie names. The session cookie holds only a random token; the API key
// it stands for stays in this process's memory.
const (
	sessionCookie = "ferry_session"
	loginCookie   = "ferry_login"
)

// session is one logged-in browser.
type session struct {
	key     string            // the API key, used for every call to the API
	who     apitypes.Identity // whose key it is (GET /v1/whoami)
	csrf    string
	expires time.Time
}

// sessions holds the sessions of this process. A session lives where it
// was made: behind a load balancer, send a browser to the same process
// (or log in again).
type sessions struct {
	mu    sync.Mutex
	m     map[string]*session
	ttl   time.Duration
	max   int
	now   func() time.Time
	sweep time.Time
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, max: max, now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for key and returns its token. When the store
// is full, the session closest to expiry goes.
func (s *sessions) create(key string, who apitypes.Identity) (string, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	if len(s.m) >= s.max {
		var oldest string
		for tok, se := range s.m {
			if oldest == "" || se.expires.Before(s.m[oldest].expires) {
				oldest = tok
			}
		}
		delete(s.m, oldest)
	}
	tok := randomToken()
	se := &session{key: key, who: who, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.m[tok] = se
	return tok, se
}

// get returns the live session of token, extending it.
func (s *sessions) get(token string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[token]
	if !ok {
		return nil, false
	}
	now := s.now()
	if now.After(se.expires) {
		delete(s.m, token)
		return nil, false
	}
	se.expires = now.Add(s.ttl)
	return se, true
}

func (s *sessions) remove(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, token)
}

// expire drops expired sessions, at most once a minute. s.mu is held.
func (s *sessions) expire() {
	now := s.now()
	if now.Sub(s.sweep) < time.Minute {
		return
	}
	s.sweep = now
	for tok, se := range s.m {
		if now.After(se.expires) {
			delete(s.m, tok)
		}
	}
}

// setCookie sets a cookie for the dashboard's paths: HttpOnly,
// SameSite=Strict, Secure when the request came over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// sameToken compares two tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
