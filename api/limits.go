package api

import (
	"net/http"
	"time"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// Defaults of the limits on what one client can hold of a process.
const (
	// MaxConcurrentUploadsDefault is how many uploads one process receives
	// at once; one more is answered 503 with Retry-After.
	MaxConcurrentUploadsDefault = 64
	// ReportWriteTimeoutDefault bounds each write of a streamed report or
	// key list: a client that stops reading for that long is cut off, so
	// it holds a goroutine and a page of rows for no longer.
	ReportWriteTimeoutDefault = 30 * time.Second
	// MinUploadRateDefault is the bytes per second an upload's body must
	// keep up, on average over MinUploadRateWindowDefault: 8 KiB/s.
	MinUploadRateDefault = 8 << 10
	// MinUploadRateWindowDefault is how far behind the minimum rate a
	// body may fall before it is cut, in time: its credit at the start.
	MinUploadRateWindowDefault = 30 * time.Second
)

// UploadLimits bound what one client can hold of the upload path.
type UploadLimits struct {
	// MaxUploadsPerKey caps the uploads one API key has in flight in a
	// process; 0 leaves only the fair share: while other keys upload too,
	// a key may take a slot only if it holds fewer than
	// max(1, MaxConcurrentUploads / keys uploading) (slots.go).
	MaxUploadsPerKey int
	// MinUploadRate is the bytes per second an upload body must keep up
	// while the server waits on it; MinUploadRateDefault if zero, no
	// minimum if negative. Bursts bank credit for at most one window.
	MinUploadRate int64
	// MinUploadRateWindow is how far behind that rate a body may fall,
	// in time, before it is cut (400, its partial file removed);
	// MinUploadRateWindowDefault if zero.
	MinUploadRateWindow time.Duration
}

// uploadLimitsWithDefaults returns l with its zero fields set.
func uploadLimitsWithDefaults(l UploadLimits) UploadLimits {
	if l.MinUploadRate == 0 {
		l.MinUploadRate = MinUploadRateDefault
	}
	if l.MinUploadRateWindow <= 0 {
		l.MinUploadRateWindow = MinUploadRateWindowDefault
	}
	if l.MaxUploadsPerKey < 0 {
		l.MaxUploadsPerKey = 0
	}
	return l
}

// busyRetryAfter is the Retry-After of a 503 for too many uploads.
const busyRetryAfter = "1"

// limitUploads answers 503 with Retry-After, before a byte of the body is
// read, when this process receives MaxConcurrentUploads uploads already or
// when key holds its share of them (slots.go); and it cuts a body that
// falls behind the minimum rate (ratebody.go).
func (s *Server) limitUploads(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
		if msg, ok := s.uploads.take(key.ID, time.Now()); !ok {
			busyUploads.Inc()
			w.Header().Set("Retry-After", busyRetryAfter)
			// The body is not read: close the connection rather than
			// drain it.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "busy", msg+": retry after "+busyRetryAfter+"s")
			return
		}
		defer func() { s.uploads.give(key.ID, time.Now()) }()
		body := s.minRateBody(w, r)
		if body == nil {
			h(w, r, key)
			return
		}
		// A shallow copy carries the wrapped body: net/http still sees its
		// own body on the request it made, to close rather than drain a
		// connection whose body was not read to its end.
		rr := r.WithContext(r.Context())
		rr.Body = body
		h(w, rr, key)
		body.finish()
	}
}
