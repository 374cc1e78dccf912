package ui

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/ui/sessions"
)

// Cookie names. The session cookie holds only a random token; the
// sessions table (package sessions) keeps a hash of it and the key id it
// stands for, never the API key.
const (
	sessionCookie = "ferry_session"
	loginCookie   = "ferry_login"
)

// session is one logged-in browser, as read from the sessions table on
// this request.
type session struct {
	who  apikeys.Identity
	csrf string
}

// KeyChecker checks API keys (api.KeyChecker).
type KeyChecker interface {
	Check(ctx context.Context, key string) (apikeys.Identity, error)
}

// sessionKey marks a context the dashboard gives its in-process API calls
// for a session it has checked. Only this package can make one: no request
// from the network carries it.
type sessionKey struct{}

// sessionBearer is the bearer the in-process calls of a session send: it
// is no key, and the API accepts it only through Keys, for a context that
// carries the session's identity.
const sessionBearer = "ferry-dashboard-session"

// withIdentity makes ctx speak for who in the in-process API calls.
func withIdentity(ctx context.Context, who apikeys.Identity) context.Context {
	return context.WithValue(ctx, sessionKey{}, who)
}

// Keys wraps the API's key checker for a process that serves the
// dashboard: an in-process call of a live session (its identity read from
// the sessions table on this very request) speaks for the session's key;
// every other bearer goes to next. Give it to api.Deps.Keys.
func Keys(next KeyChecker) KeyChecker { return sessionKeys{next: next} }

type sessionKeys struct{ next KeyChecker }

func (k sessionKeys) Check(ctx context.Context, key string) (apikeys.Identity, error) {
	if who, ok := ctx.Value(sessionKey{}).(apikeys.Identity); ok && key == sessionBearer {
		return who, nil
	}
	return k.next.Check(ctx, key)
}

// Known passes on the wrapped checker's knowledge of keys that worked
// before (apikeys.Cache.Known), which the API's failure limit lets
// through: without it, a wrapped checker would hide it.
func (k sessionKeys) Known(key string) bool {
	kk, ok := k.next.(interface{ Known(string) bool })
	return ok && kk.Known(key)
}

// readSession returns the live session of the request's cookie and the
// cookie's token; sessions.ErrNotFound when there is none.
func (u *UI) readSession(r *http.Request) (*session, string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, "", sessions.ErrNotFound
	}
	se, err := u.sessions.Get(r.Context(), c.Value)
	if err != nil {
		return nil, "", err
	}
	return &session{who: se.Key, csrf: se.CSRF}, c.Value, nil
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
