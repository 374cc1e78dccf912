package workfront

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Stats are the fake's counters.
type Stats struct {
	// MaxConcurrent is the most API requests served at once.
	MaxConcurrent int `json:"maxConcurrent"`
	// InFlight is the API requests being served now.
	InFlight int `json:"inFlight"`
	// Sessions is the number of live sessions.
	Sessions int `json:"sessions"`
	// PendingHandles is the number of uploads no document claimed yet.
	PendingHandles int `json:"pendingHandles"`
	// Documents is the number of documents created.
	Documents int `json:"documents"`
}

// Stats returns the fake's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		MaxConcurrent: s.maxInFlight, InFlight: s.inFlight, Sessions: len(s.sessions),
		PendingHandles: len(s.uploads), Documents: len(s.docs),
	}
}

// serveControl is the control API for driving the fake from another
// process. It needs no credentials.
//
//	GET  /_fake/documents   the documents created (JSON list of StoredDocument)
//	GET  /_fake/requests    the API requests seen (JSON list of Request)
//	GET  /_fake/stats       the counters (Stats), maxConcurrent among them
//	POST /_fake/fail?step=S&count=N&status=C&retry_after=SECONDS&mode=M&class=&message=
//	POST /_fake/expire?what=sessions|handles|all   (default sessions)
//	POST /_fake/reset       forget everything
//	POST /_fake/refuse-credentials?for=DURATION   refuse every credential for a while (e.g. 60s)
//
// fail's step is login, upload, document, search, get, logout, delete,
// docv, "docv search" or lookup (the next search of either kind); mode is
// status (the default: HTTP status C, 503 by default), error200, drop,
// drop-after or expire; count defaults to 1; class and message fill the
// error envelope.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	want := map[string]string{
		"/_fake/documents":          http.MethodGet,
		"/_fake/requests":           http.MethodGet,
		"/_fake/stats":              http.MethodGet,
		"/_fake/fail":               http.MethodPost,
		"/_fake/expire":             http.MethodPost,
		"/_fake/reset":              http.MethodPost,
		"/_fake/refuse-credentials": http.MethodPost,
	}[r.URL.Path]
	switch {
	case want == "":
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such control endpoint"})
		return
	case r.Method != want:
		w.Header().Set("Allow", want)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + want})
		return
	}
	switch r.URL.Path {
	case "/_fake/documents":
		writeJSON(w, http.StatusOK, nonNil(s.StoredDocuments()))
	case "/_fake/requests":
		writeJSON(w, http.StatusOK, nonNil(s.Requests()))
	case "/_fake/stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "/_fake/fail":
		if msg := s.controlFail(r); msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/expire":
		switch r.URL.Query().Get("what") {
		case "", "sessions":
			s.ExpireCredentials()
		case "handles":
			s.ExpireHandles()
		case "all":
			s.ExpireCredentials()
			s.ExpireHandles()
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "what must be sessions, handles or all"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/refuse-credentials":
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "for must be a positive duration such as 60s"})
			return
		}
		s.RefuseCredentials(d)
		w.WriteHeader(http.StatusNoContent)
	}
}

// controlFail injects the fault /_fake/fail describes, returning why it
// cannot, or "".
func (s *Server) controlFail(r *http.Request) string {
	q := r.URL.Query()
	step := q.Get("step")
	if !slices.Contains([]string{StepLogin, StepLogout, StepUpload, StepDocument, StepSearch, StepGet, StepDelete, StepDocv, StepDocvFind, StepLookup}, step) {
		return "step must be login, logout, upload, document, search, get, delete, docv, docv search or lookup"
	}
	count, status, retry := 1, http.StatusServiceUnavailable, 0
	for name, dst := range map[string]*int{"count": &count, "status": &status, "retry_after": &retry} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return name + " must be a non-negative integer"
			}
			*dst = n
		}
	}
	mode := q.Get("mode")
	switch mode {
	case "", ModeStatus:
		if status < 400 || status > 599 {
			return "status must be 4xx or 5xx"
		}
	case ModeError200, ModeDrop, ModeDropAfter, ModeExpire:
	default:
		return "mode must be status, error200, drop, drop-after or expire"
	}
	s.Inject(step, count, Fault{
		Mode: mode, Status: status, RetryAfter: time.Duration(retry) * time.Second,
		Class: q.Get("class"), Message: q.Get("message"),
	})
	return ""
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
