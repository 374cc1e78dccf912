package api

import (
	"net/http"
	"strings"
	"time"
)

// BodyReadTimeoutDefault is how long the body of a request other than an
// upload may take to arrive whole.
const BodyReadTimeoutDefault = 30 * time.Second

// uploadRoute and the parts of upload sessions (sessionPartsPrefix) are
// the routes whose bodies may take long; they have their own idle timeout
// and minimum rate (limitUploads).
const (
	uploadRoute        = "/v1/uploads"
	sessionPartsPrefix = "/v1/uploads/sessions/"
)

// isUploadBody says whether r's body is a file's bytes.
func isUploadBody(r *http.Request) bool {
	return (r.Method == http.MethodPost && r.URL.Path == uploadRoute) ||
		(r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, sessionPartsPrefix))
}

// WithBodyDeadline gives the body of every request but an upload (POST
// /v1/uploads) a read deadline of timeout from when the handler starts:
// a client trickling a login form or a JSON body is cut then, and its
// connection closed. The HTTP server's ReadTimeout cannot do this, for it
// would cut long uploads too. A request without a body gets no deadline,
// and net/http lifts it once the body is read to its end (it then reads
// ahead for the next request without one), so a handler that works long
// after reading its body (a bulk re-queue) or streams a long answer is
// never cut for it. timeout <= 0 turns the deadline off.
func WithBodyDeadline(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if timeout > 0 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody && !isUploadBody(r) {
			// Not a network connection (the dashboard's in-process
			// requests): nothing to bound, and the error is ignored.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}
