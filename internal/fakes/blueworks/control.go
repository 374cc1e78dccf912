package blueworks

import (
	"net/http"
	"strconv"
	"time"
)

// serveControl is the control API for driving the fake from another
// process:
//
//	GET  /_fake/documents   the stored attachments (JSON list)
//	GET  /_fake/requests    the requests seen (JSON list)
//	POST /_fake/fail?step=S&count=N&status=C&retry_after=SECONDS&mode=M
//	POST /_fake/expire      end every token issued
//	POST /_fake/reset       forget everything
//
// fail's mode is "status" (the default: answer HTTP status C, 503 by
// default), "drop" (close the connection mid-request), "drop-after" (carry
// the request out, then lose its answer; &as=drop, gateway, garbled or
// late says how, drop by default), or an upload status FAILED,
// FAILED_DELETED, SIZE or SPACE (answer a valid FileUpload with HTTP 200
// and that status). step is "token", "FileUpload" (the default) or
// "ListFiles"; count defaults to 1.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	want := map[string]string{
		"/_fake/documents":          http.MethodGet,
		"/_fake/requests":           http.MethodGet,
		"/_fake/fail":               http.MethodPost,
		"/_fake/expire":             http.MethodPost,
		"/_fake/reset":              http.MethodPost,
		"/_fake/refuse-credentials": http.MethodPost,
	}[r.URL.Path]
	switch {
	case want == "":
		writeError(w, http.StatusNotFound, "not_found", "no such control endpoint")
		return
	case r.Method != want:
		w.Header().Set("Allow", want)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+want)
		return
	}
	switch r.URL.Path {
	case "/_fake/documents":
		writeJSON(w, http.StatusOK, nonNil(s.Attachments()))
	case "/_fake/requests":
		writeJSON(w, http.StatusOK, nonNil(s.Requests()))
	case "/_fake/fail":
		if msg := s.controlFail(r); msg != "" {
			writeError(w, http.StatusBadRequest, "bad_request", msg)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/expire":
		s.ExpireCredentials()
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "/_fake/refuse-credentials":
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "for must be a positive duration such as 60s")
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
	if step == "" {
		step = StepUpload
	}
	if step != StepToken && step != StepUpload && step != StepList {
		return "step must be token, FileUpload or ListFiles"
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
	switch mode := q.Get("mode"); mode {
	case "", "status":
		if status < 400 || status > 599 {
			return "status must be 4xx or 5xx"
		}
		s.Fail(step, count, status, time.Duration(retry)*time.Second)
	case "drop":
		s.Drop(step, count)
	case "drop-after":
		how := Lost(q.Get("as"))
		if how == "" {
			how = LostDrop
		}
		for range count {
			if err := s.LoseAnswerAs(step, how); err != nil {
				return err.Error()
			}
		}
	default:
		if step != StepUpload {
			return "upload status modes apply to FileUpload only"
		}
		if err := s.FailUpload(count, mode); err != nil {
			return "mode must be status, drop, FAILED, FAILED_DELETED, SIZE or SPACE"
		}
	}
	return ""
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
