package workfronthook

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// serveControl serves the control API, for driving the fake when it runs as
// a separate process. It needs no API key.
//
//	GET  /_fake/documents     uploaded documents (JSON list of File)
//	GET  /_fake/placeholders  documents created but never uploaded
//	GET  /_fake/requests      recorded requests (JSON list of Request)
//	POST /_fake/fail?step=S&count=N&status=C&retry_after=SECONDS&mode=M
//	                          inject a Fault; mode is status (default),
//	                          drop, drop-after, result-fail or forget
//	POST /_fake/expire        no-op: API keys do not expire
//	POST /_fake/reset         forget documents, requests and faults
//	POST /_fake/refuse-credentials?for=DURATION   refuse every API key for a while
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	type route struct {
		method string
		serve  func(http.ResponseWriter, *http.Request)
	}
	routes := map[string]route{
		"/_fake/documents":    {http.MethodGet, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, nonNil(s.Files())) }},
		"/_fake/placeholders": {http.MethodGet, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, nonNil(s.Placeholders())) }},
		"/_fake/requests":     {http.MethodGet, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, nonNil(s.Requests())) }},
		"/_fake/fail":         {http.MethodPost, s.serveFail},
		"/_fake/expire": {http.MethodPost, func(w http.ResponseWriter, _ *http.Request) {
			s.ExpireCredentials()
			w.WriteHeader(http.StatusNoContent)
		}},
		"/_fake/reset": {http.MethodPost, func(w http.ResponseWriter, _ *http.Request) {
			s.Reset()
			w.WriteHeader(http.StatusNoContent)
		}},
		"/_fake/refuse-credentials": {http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			d, err := time.ParseDuration(r.URL.Query().Get("for"))
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, errorBody{Status: "error", Error: "for must be a positive duration such as 60s"})
				return
			}
			s.RefuseCredentials(d)
			w.WriteHeader(http.StatusNoContent)
		}},
	}
	rt, ok := routes[r.URL.Path]
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, errorBody{Status: "error", Error: "no such control endpoint"})
	case r.Method != rt.method:
		w.Header().Set("Allow", rt.method)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Status: "error", Error: "use " + rt.method})
	default:
		rt.serve(w, r)
	}
}

func (s *Server) serveFail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Fault{Step: q.Get("step"), Mode: Mode(q.Get("mode"))}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"count", &f.Count}, {"status", &f.Status}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Status: "error", Error: p.name + " must be an integer"})
				return
			}
			*p.dst = n
		}
	}
	if v := q.Get("retry_after"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Status: "error", Error: "retry_after must be whole seconds"})
			return
		}
		f.RetryAfter = time.Duration(secs) * time.Second
	}
	if err := s.Inject(f); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Status: "error", Error: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
