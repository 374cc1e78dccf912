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
)

// busyRetryAfter is the Retry-After of a 503 for too many uploads.
const busyRetryAfter = "1"

// uploadSlots bounds the uploads in flight in this process.
type uploadSlots chan struct{}

// take claims a slot if one is free.
func (u uploadSlots) take() bool {
	select {
	case u <- struct{}{}:
		return true
	default:
		return false
	}
}

func (u uploadSlots) give() { <-u }

// limitUploads answers 503 with Retry-After once MaxConcurrentUploads
// uploads are being received, before a byte of the new one is read.
func (s *Server) limitUploads(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
		if !s.uploads.take() {
			busyUploads.Inc()
			w.Header().Set("Retry-After", busyRetryAfter)
			// The body is not read: close the connection rather than
			// drain it.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "busy",
				"too many uploads in progress on this server: retry after "+busyRetryAfter+"s")
			return
		}
		defer s.uploads.give()
		h(w, r, key)
	}
}
