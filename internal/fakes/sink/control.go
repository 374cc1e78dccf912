package sink

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// control serves the control API under /_fake/, for driving the sink when
// it runs as a separate process; it does not check the method:
//
//	/_fake/documents, /_fake/resources, /_fake/requests   what the sink
//	     holds and answered, as JSON
//	/_fake/reset    forget documents, requests and faults
//	/_fake/fail?count=N&status=C&retry_after=SECONDS&mode=drop|drop-after&step=put|delete
//	/_fake/refuse-credentials?for=DURATION   answer 401 to every upload for a while
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/_fake/") {
	case "documents":
		writeJSON(w, s.Documents())
	case "resources":
		writeJSON(w, s.Resources())
	case "requests":
		writeJSON(w, s.Requests())
	case "reset":
		s.Reset()
		writeJSON(w, map[string]string{"result": "ok"})
	case "fail":
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("count"))
		status, _ := strconv.Atoi(q.Get("status"))
		ra, _ := strconv.Atoi(q.Get("retry_after"))
		if n <= 0 {
			n = 1
		}
		switch {
		case q.Get("mode") == "drop-after":
			for range n {
				s.LoseAnswer(q.Get("step")) // put or delete: a document path's
			}
			writeJSON(w, map[string]string{"result": "ok"})
			return
		case q.Get("mode") == "drop":
			status = 0
		case status == 0:
			status = http.StatusServiceUnavailable
		}
		s.Fail(n, status, time.Duration(ra)*time.Second)
		writeJSON(w, map[string]string{"result": "ok"})
	case "refuse-credentials":
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 {
			reply(w, http.StatusBadRequest, "for must be a positive duration such as 60s")
			return
		}
		s.RefuseCredentials(d)
		writeJSON(w, map[string]string{"result": "ok"})
	default:
		http.NotFound(w, r)
	}
}
