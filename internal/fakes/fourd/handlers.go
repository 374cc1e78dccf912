package fourd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxJSONBytes bounds the JSON body of a $method=update.
const maxJSONBytes = 1 << 20

// login opens a session for the configured user.
func (s *Server) login(w http.ResponseWriter, r *http.Request, rec *Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxJSONBytes))
	user, pass := r.Header.Get("username-4D"), r.Header.Get("password-4D")
	rec.Username = user
	s.mu.Lock()
	refusing := time.Now().Before(s.refuseUntil)
	s.mu.Unlock()
	if s.opts.Username != "" && (refusing || !equal(user, s.opts.Username) || !equal(pass, s.opts.Password)) {
		s.reply(w, rec, http.StatusOK, map[string]bool{"result": false})
		return
	}
	id := newID()
	s.mu.Lock()
	s.sessions[id] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: s.opts.CookieName, Value: id, Path: "/", HttpOnly: true})
	s.reply(w, rec, http.StatusOK, map[string]bool{"result": true})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// upload answers POST /rest/$upload: it hashes the body as it streams in
// and keeps an upload with a fresh ID until its timeout.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, rec *Request) {
	q := r.URL.Query()
	binary, pict := q.Get("$binary") == "true", q.Get("$rawPict") == "true"
	if binary == pict {
		s.refuse(w, r, rec, http.StatusBadRequest, "$upload needs exactly one of $binary=true and $rawPict=true")
		return
	}
	timeout := s.opts.UploadTimeout
	if q.Has("$timeout") {
		secs, err := strconv.Atoi(q.Get("$timeout"))
		if err != nil || secs <= 0 {
			s.refuse(w, r, rec, http.StatusBadRequest, "$timeout must be a positive number of seconds, not "+strconv.Quote(q.Get("$timeout")))
			return
		}
		timeout = time.Duration(secs) * time.Second
	}
	ctype, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if pict && (err != nil || !strings.HasPrefix(ctype, "image/")) {
		s.refuse(w, r, rec, http.StatusBadRequest, "$rawPict=true needs an image/* Content-Type, not "+strconv.Quote(r.Header.Get("Content-Type")))
		return
	}
	switch {
	case r.ContentLength < 0:
		s.refuse(w, r, rec, http.StatusLengthRequired, "Content-Length is required")
		return
	case r.ContentLength > s.opts.MaxRequestBytes:
		// Not drained: a server refusing a too large request closes it.
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, 0,
			fmt.Sprintf("request of %d bytes is over the maximum request size of %d bytes", r.ContentLength, s.opts.MaxRequestBytes))
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	rec.BodySize, rec.BodySHA256 = n, hex.EncodeToString(h.Sum(nil))
	if err != nil {
		s.replyError(w, rec, http.StatusBadRequest, 0, "body broke off after "+strconv.FormatInt(n, 10)+" bytes")
		return
	}
	u := &upload{
		id: newID(), name: filename(r.Header.Get("Content-Disposition")), contentType: ctype,
		sha256: rec.BodySHA256, size: n, picture: pict, expires: s.opts.Now().Add(timeout),
	}
	s.mu.Lock()
	s.uploads[u.id] = u
	s.mu.Unlock()
	s.reply(w, rec, http.StatusOK, map[string]string{"ID": u.id})
}

// refuse reads and discards the body, so the client reliably sees the
// answer, then answers status with a 4D error body.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rec *Request, status int, msg string) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.replyError(w, rec, status, 0, msg)
}

// filename reads the filename of a Content-Disposition, the RFC 5987
// filename* when there is one; "" when there is none.
func filename(cd string) string {
	if cd == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return ""
	}
	return params["filename"]
}

func errorBody(code int, msg string) map[string]any {
	return map[string]any{"__ERROR": []fourDError{{Message: msg, ComponentSignature: "dbmg", ErrCode: code}}}
}
