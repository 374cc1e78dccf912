package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// errSlowBody is why an upload body was cut for its rate.
var errSlowBody = errors.New("the body came slower than the minimum upload rate")

// minRateBody cuts an upload body that falls behind the minimum rate: a
// client sending a byte every few seconds never trips the idle timeout,
// and would hold its upload slot for as long as it liked.
//
// It keeps a credit of bytes, a token bucket: the time the server waits
// on the client drains it at the minimum rate, each byte received refills
// it by one, and it holds at most one window's worth, which is also what
// it starts with. When it runs dry the body is cut. So a stalled body is
// cut one window after its last burst, a body at half the rate after two
// windows, and a fast start banks at most one window. Only the time spent
// waiting on the client counts: while the server itself is slow to store
// (storage backs up), the client is not blamed.
type minRateBody struct {
	body   io.ReadCloser
	rc     *http.ResponseController
	rate   float64 // bytes per second
	window time.Duration
	idle   time.Duration // the body idle timeout, or 0
	credit float64
	err    error
	// timedOut: a read ran into a deadline (this one's or the idle
	// timeout's).
	timedOut bool
}

// minRateBody returns r's body under the minimum rate, or nil when there
// is none.
func (s *Server) minRateBody(w http.ResponseWriter, r *http.Request) *minRateBody {
	l := s.cfg.UploadLimits
	if l.MinUploadRate <= 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rate := float64(l.MinUploadRate)
	return &minRateBody{body: r.Body, rc: http.NewResponseController(w), rate: rate,
		window: l.MinUploadRateWindow, idle: max(s.cfg.BodyIdleTimeout, 0),
		credit: rate * l.MinUploadRateWindow.Seconds()}
}

func (b *minRateBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	start := time.Now()
	allowed := time.Duration(b.credit / b.rate * float64(time.Second))
	rateBound := b.idle <= 0 || allowed < b.idle
	wait := allowed
	if !rateBound {
		wait = b.idle
	}
	_ = b.rc.SetReadDeadline(start.Add(wait))
	n, err := b.body.Read(p)
	waited := time.Since(start)
	b.credit = min(b.rate*b.window.Seconds(), b.credit-b.rate*waited.Seconds()+float64(n))
	timedOut := errors.Is(err, os.ErrDeadlineExceeded)
	b.timedOut = b.timedOut || timedOut
	switch {
	case timedOut && !rateBound:
		return n, err // the idle timeout's: the caller names it
	case timedOut || (b.credit <= 0 && err == nil):
		b.err = fmt.Errorf("%w (%d bytes/s on average over %s)", errSlowBody, int64(b.rate), b.window)
		return n, b.err
	case err == io.EOF: // a body's end is a bare io.EOF
		// The whole body is in: no deadline may outlive it (net/http's
		// read for the next request would run into it and cancel the
		// request's context while the upload is being recorded).
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// Close closes the request's body.
func (b *minRateBody) Close() error { return b.body.Close() }

// finish runs once the handler is done. A body cut for its pace must not
// be drained by net/http to keep the connection (it would wait on the
// same slow client, with the handler's deadlines lifted): its read
// deadline is set in the past, so the connection is closed instead.
func (b *minRateBody) finish() {
	if b.timedOut || b.err != nil {
		_ = b.rc.SetReadDeadline(time.Now())
	}
}
