package api

import (
	"io"
	"net/http"
	"time"
)

// BodyReadTimeoutDefault is how long the body of a request other than an
// upload may take to arrive whole.
const BodyReadTimeoutDefault = 30 * time.Second

// uploadRoute is the one route whose body may take hours; it has its own
// idle timeout and minimum rate (limitUploads).
const uploadRoute = "/v1/uploads"

// WithBodyDeadline gives the body of every request but an upload (POST
// /v1/uploads) a read deadline of timeout from when the handler starts:
// a client trickling a login form or a JSON body is cut then, and its
// connection closed. The HTTP server's ReadTimeout cannot do this, for it
// would cut long uploads too. A request without a body gets no deadline,
// and a body read to its end lifts it, so a handler that works long after
// reading its body (a bulk re-queue) or streams a long answer is never
// cut for it. timeout <= 0 turns the deadline off.
func WithBodyDeadline(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if timeout <= 0 || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody ||
			(r.Method == http.MethodPost && r.URL.Path == uploadRoute) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			// Not a network connection (the dashboard's in-process
			// requests): nothing to bound.
			next.ServeHTTP(w, r)
			return
		}
		// A shallow copy carries the wrapped body: net/http still sees
		// its own body on the request it made.
		rr := r.WithContext(r.Context())
		rr.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		next.ServeHTTP(w, rr)
	})
}

// deadlineBody lifts the read deadline once the body is read to its end:
// net/http then reads ahead for the next request, and that read running
// into the deadline would cancel the request's context.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF { //nolint:errorlint // a body's end is a bare io.EOF
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
