package blueworks

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"mime"
	"net/http"
	"strings"
)

// serveToken is POST /oauth/token: the client-credentials grant, with the
// credentials in the form body as Blueworks Live documents it.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	rec := Request{Step: StepToken, Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	refuse := func(code int, errCode, desc string) {
		rec.Status, rec.Error = code, errCode+": "+desc
		s.record(rec)
		writeOAuthError(w, code, errCode, desc)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	if s.injectFault(w, r, StepToken) {
		return
	}
	if mt, _, _ := mime.ParseMediaType(rec.ContentType); mt != "application/x-www-form-urlencoded" {
		refuse(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	// Only the body counts: credentials in the query string are refused
	// like missing ones.
	form := r.PostForm
	rec.GrantType, rec.ClientID = form.Get("grant_type"), form.Get("client_id")
	switch {
	case rec.GrantType == "":
		refuse(http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	case rec.GrantType != "client_credentials":
		refuse(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	case rec.ClientID == "" || form.Get("client_secret") == "":
		refuse(http.StatusUnauthorized, "invalid_client", "client_id and client_secret are required")
		return
	case !equal(rec.ClientID, s.opts.ClientID) || !equal(form.Get("client_secret"), s.opts.ClientSecret) || s.refusing():
		refuse(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	tok := newToken()
	s.mu.Lock()
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
	s.mu.Unlock()
	rec.Status = http.StatusOK
	s.record(rec)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(s.opts.TokenTTL.Seconds()),
	})
}

// authorize checks the bearer token of r; it returns "" if the token is
// valid, else why not.
func (s *Server) authorize(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "missing bearer token"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, known := s.tokens[tok]
	switch {
	case !known:
		return "the access token is invalid or has expired"
	case !s.opts.Now().Before(exp):
		delete(s.tokens, tok)
		return "the access token is invalid or has expired"
	}
	return ""
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
