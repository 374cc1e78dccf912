package fourd

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// control serves the control API, for driving the fake when it runs as a
// separate process:
//
//	GET  /_fake/documents   the documents, as JSON
//	GET  /_fake/requests    the recorded requests, as JSON
//	GET  /_fake/entity?dataclass=D&key=K   one entity's state
//	POST /_fake/fail?step=S&count=N&status=C&retry_after=SECONDS&mode=M&err_code=E
//	     mode is status (default), drop, drop-after, stale or
//	     expire-upload (the last two for step=update); err_code is the
//	     4D errCode a status fault's __ERROR carries (default 0)
//	POST /_fake/expire      ends every session; ?what=uploads expires
//	     every upload ID instead
//	POST /_fake/touch?dataclass=D&key=K    another user saves the entity
//	POST /_fake/reset       back to the initial state
//	POST /_fake/refuse-credentials?for=DURATION   refuse logins and sessions for a while
//	GET  /_fake/stats       {"binds": N}: files bound by updates, repeats included
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	if s.controlGet(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		controlError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/_fake/fail":
		if msg := s.controlFail(q); msg != "" {
			controlError(w, http.StatusBadRequest, msg)
			return
		}
	case "/_fake/expire":
		switch q.Get("what") {
		case "", "sessions":
			s.ExpireCredentials()
		case "uploads":
			s.ExpireUploads()
		default:
			controlError(w, http.StatusBadRequest, "what must be sessions or uploads")
			return
		}
	case "/_fake/touch":
		if !s.Touch(q.Get("dataclass"), q.Get("key")) {
			controlError(w, http.StatusNotFound, "no such entity")
			return
		}
	case "/_fake/reset":
		s.Reset()
	case "/_fake/refuse-credentials":
		d, err := time.ParseDuration(q.Get("for"))
		if err != nil || d <= 0 {
			controlError(w, http.StatusBadRequest, "for must be a positive duration such as 60s")
			return
		}
		s.RefuseCredentials(d)
	default:
		controlError(w, http.StatusNotFound, "unknown control path "+r.URL.Path)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// controlGet answers the control API's reads (documents, requests, stats,
// entity) and reports whether r was one.
func (s *Server) controlGet(w http.ResponseWriter, r *http.Request) bool {
	get := map[string]func() any{
		"/_fake/documents": func() any { return s.documentsJSON() },
		"/_fake/requests":  func() any { return s.Requests() },
		"/_fake/stats":     func() any { return map[string]int{"binds": s.Creations()} },
	}
	f, ok := get[r.URL.Path]
	if !ok && r.URL.Path != "/_fake/entity" {
		return false
	}
	if r.Method != http.MethodGet {
		controlError(w, http.StatusMethodNotAllowed, "use GET")
		return true
	}
	if ok {
		controlJSON(w, http.StatusOK, f())
		return true
	}
	q := r.URL.Query()
	e, ok := s.Entity(q.Get("dataclass"), q.Get("key"))
	if !ok {
		controlError(w, http.StatusNotFound, "no such entity")
		return true
	}
	controlJSON(w, http.StatusOK, e)
	return true
}

// controlFail injects the fault /_fake/fail describes, returning why it
// cannot, or "".
func (s *Server) controlFail(q url.Values) string {
	f := Fault{Step: q.Get("step"), Mode: Mode(q.Get("mode"))}
	for name, dst := range map[string]*int{"count": &f.Count, "status": &f.Status, "err_code": &f.ErrCode} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return name + " must be a number"
			}
			*dst = n
		}
	}
	if v := q.Get("retry_after"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil {
			return "retry_after must be a number of seconds"
		}
		f.RetryAfter = time.Duration(secs) * time.Second
	}
	if err := s.Inject(f); err != nil {
		return err.Error()
	}
	return ""
}

// documentJSON is a document as the control API lists it.
type documentJSON struct {
	RemoteID string `json:"remoteId"`
	Name     string `json:"name"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

func (s *Server) documentsJSON() []documentJSON {
	out := []documentJSON{}
	for _, d := range s.Documents() {
		out = append(out, documentJSON(d))
	}
	return out
}

func controlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func controlError(w http.ResponseWriter, status int, msg string) {
	controlJSON(w, status, map[string]string{"error": msg})
}
