package workfront

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
)

// serveAPI answers one request under APIPath: the concurrency limit, the
// URI limit and injected faults first, then the endpoint.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Time:          s.opts.Now(),
		Method:        effectiveMethod(r),
		Path:          r.URL.Path,
		QueryKeys:     queryKeys(r),
		ContentType:   r.Header.Get("Content-Type"),
		ContentLength: r.ContentLength,
	}
	step, id := route(r.URL.Path, rec.Method)
	rec.Step = step
	sw := &statusWriter{ResponseWriter: w}
	// Requests are listed in the order they arrived, whenever they end.
	at := s.record(rec)
	entered := s.enter()
	// finish completes the record and leaves before the connection is
	// dropped, so that a client seeing the drop sees both.
	finished := false
	finish := func() {
		if finished {
			return
		}
		finished = true
		if entered {
			s.leave()
		}
		rec.Status = sw.status
		s.update(at, rec)
	}
	defer finish()
	if s.refuseEarly(sw, r, &rec, entered) {
		return
	}
	mode, answered := s.applyFault(sw, r, &rec)
	switch {
	case answered:
		return
	case mode == ModeDrop:
		finish()
		drop(w)
		return
	}
	var out http.ResponseWriter = sw
	if mode == ModeDropAfter {
		out = &discardWriter{header: http.Header{}}
	}
	s.serveStep(out, r, &rec, step, id)
	if mode == ModeDropAfter {
		finish()
		drop(w)
	}
}

// refuseEarly answers a request refused before its faults and endpoint:
// over the concurrency limit (entered is false), with a URI over
// MaxURIBytes, or to a path the fake does not serve. It reports whether
// it answered.
func (s *Server) refuseEarly(w http.ResponseWriter, r *http.Request, rec *Request, entered bool) bool {
	switch {
	case !entered:
		writeError(w, r, rec, http.StatusTooManyRequests, ClassTooManyRequests,
			fmt.Sprintf("more than %d concurrent API requests", s.opts.MaxConcurrent))
	case len(r.RequestURI) > MaxURIBytes:
		writeError(w, r, rec, http.StatusRequestURITooLong, ClassInvalidParameter, "request URI too long")
	case rec.Step == "":
		writeError(w, r, rec, http.StatusNotFound, ClassNotFound, "no such endpoint: "+r.URL.Path)
	default:
		return false
	}
	return true
}

// applyFault takes the fault injected for the request's step, if any,
// and applies what comes before the endpoint: it answers a ModeStatus or
// ModeError200 fault and ends the sessions for a ModeExpire one. It
// returns the fault's mode ("" for none), for serveAPI to drop the
// connection before or after the endpoint, and whether it answered.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, rec *Request) (mode string, answered bool) {
	f, ok := s.take(rec.Step)
	if !ok {
		return "", false
	}
	rec.Fault = f.Mode
	switch f.Mode {
	case ModeDrop, ModeDropAfter:
	case ModeExpire:
		s.ExpireCredentials()
	default: // ModeStatus, ModeError200
		f.answer(w, r, rec)
		return f.Mode, true
	}
	return f.Mode, false
}

// serveStep checks the method and the credentials, then serves the step.
func (s *Server) serveStep(w http.ResponseWriter, r *http.Request, rec *Request, step, id string) {
	allowed := map[string][]string{
		StepLogin:    {http.MethodGet, http.MethodPost},
		StepLogout:   {http.MethodGet, http.MethodPost},
		StepUpload:   {http.MethodPost},
		StepDocument: {http.MethodPost},
		StepSearch:   {http.MethodGet},
		StepGet:      {http.MethodGet},
		StepDelete:   {http.MethodDelete},
		StepDocv:     {http.MethodPost},
		StepDocvFind: {http.MethodGet},
	}[step]
	// The method parameter cannot turn a GET into a file upload: the file
	// travels in a POST body.
	if !slices.Contains(allowed, rec.Method) || (step == StepUpload && r.Method != http.MethodPost) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, rec, http.StatusMethodNotAllowed, ClassInvalidParameter,
			fmt.Sprintf("method %s is not supported by %s", rec.Method, step))
		return
	}
	if step == StepLogin {
		s.serveLogin(w, r, rec)
		return
	}
	rec.Auth = s.authenticate(r)
	if rec.Auth != "session" && rec.Auth != "apiKey" {
		writeError(w, r, rec, http.StatusUnauthorized, ClassAuthentication, "You are not currently logged in")
		return
	}
	switch step {
	case StepLogout:
		s.serveLogout(w, r)
	case StepUpload:
		s.serveUpload(w, r, rec)
	case StepDocument:
		s.serveCreate(w, r, rec)
	case StepSearch:
		s.serveSearch(w, r, rec)
	case StepGet:
		s.serveGet(w, r, rec, id)
	case StepDelete:
		s.serveDelete(w, r, rec, id)
	case StepDocv:
		s.serveDocv(w, r, rec)
	case StepDocvFind:
		s.serveDocvSearch(w, r, rec)
	}
}

// route names the step of an API path (and of the effective method, for
// an object's URI: GET reads it, DELETE deletes it) and the object ID it
// carries, if any; "" for a path the fake does not serve.
func route(path, method string) (step, id string) {
	rest, ok := strings.CutPrefix(path, APIPath+"/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	isDoc := strings.EqualFold(parts[0], "document") || strings.EqualFold(parts[0], "docu")
	isDocv := strings.EqualFold(parts[0], "docv") || strings.EqualFold(parts[0], "documentversion")
	switch {
	case len(parts) == 1 && isDocv:
		return StepDocv, ""
	case len(parts) == 2 && isDocv && parts[1] == "search":
		return StepDocvFind, ""
	case len(parts) == 2 && isDoc && parts[1] != "" && parts[1] != "search" && method == http.MethodDelete:
		return StepDelete, parts[1]
	case len(parts) == 1 && parts[0] == "login":
		return StepLogin, ""
	case len(parts) == 1 && parts[0] == "logout":
		return StepLogout, ""
	case len(parts) == 1 && parts[0] == "upload":
		return StepUpload, ""
	case len(parts) == 1 && isDoc:
		return StepDocument, ""
	case len(parts) == 2 && isDoc && parts[1] == "search":
		return StepSearch, ""
	case len(parts) == 2 && isDoc && parts[1] != "":
		return StepGet, parts[1]
	}
	return "", ""
}

// effectiveMethod is the method parameter, which overrides the HTTP
// method in Workfront, or else the HTTP method.
func effectiveMethod(r *http.Request) string {
	return strings.ToUpper(cmp.Or(r.URL.Query().Get("method"), r.Method))
}

// authenticate says which credential r carries: "session" or "apiKey" when
// valid, "invalid" when one is given but unknown, "none" otherwise. A
// session wins over an API key.
func (s *Server) authenticate(r *http.Request) string {
	sid := cmp.Or(r.Header.Get("SessionID"), r.URL.Query().Get("sessionID"))
	key := cmp.Or(r.URL.Query().Get("apiKey"), r.Header.Get("apiKey"))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.refusingLocked() && (sid != "" || key != ""):
		return "invalid"
	case sid != "" && s.sessions[sid]:
		return "session"
	case sid != "":
		return "invalid"
	case key != "" && key == s.opts.APIKey:
		return "apiKey"
	case key != "":
		return "invalid"
	}
	return "none"
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request, rec *Request) {
	rec.Auth = "none"
	if err := r.ParseForm(); err != nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "unreadable parameters")
		return
	}
	if r.Form.Get("username") != s.opts.Username || r.Form.Get("password") != s.opts.Password || s.refusing() {
		writeError(w, r, rec, http.StatusUnauthorized, ClassAuthentication, "Invalid username or password.")
		return
	}
	sid := newID()
	s.mu.Lock()
	s.sessions[sid] = true
	s.mu.Unlock()
	writeData(w, map[string]string{"sessionID": sid, "userID": UserID})
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	sid := cmp.Or(r.Header.Get("SessionID"), r.URL.Query().Get("sessionID"))
	s.mu.Lock()
	delete(s.sessions, sid)
	s.mu.Unlock()
	writeData(w, map[string]bool{"success": true})
}

// serveUpload streams the multipart body, hashing the uploadedFile part,
// and answers a handle for it.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, rec *Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter,
			"upload needs a multipart/form-data body with the file in uploadedFile")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var got *upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "malformed multipart body: "+err.Error())
			return
		}
		if got != nil || part.FormName() != "uploadedFile" || part.FileName() == "" {
			_, _ = io.Copy(io.Discard, part)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, part)
		if err != nil {
			writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "malformed multipart body: "+err.Error())
			return
		}
		got = &upload{
			fileName:    part.FileName(),
			contentType: part.Header.Get("Content-Type"),
			size:        n,
			sha256:      hex.EncodeToString(h.Sum(nil)),
			created:     s.opts.Now(),
		}
	}
	if got == nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "no file in the uploadedFile part")
		return
	}
	handle := newID()
	s.mu.Lock()
	s.uploads[handle] = *got
	s.mu.Unlock()
	rec.FileName, rec.Size, rec.SHA256, rec.Handle = got.fileName, got.size, got.sha256, handle
	writeData(w, map[string]string{"handle": handle})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardWriter takes the answer of a request whose connection is then
// dropped.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// drop closes the connection without answering.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
