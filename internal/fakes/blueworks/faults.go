package blueworks

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Upload statuses FileUpload answers with HTTP 200.
const (
	StatusSuccess       = "SUCCESS"
	StatusFailed        = "FAILED"
	StatusFailedDeleted = "FAILED_DELETED"
	StatusSize          = "SIZE"
	StatusSpace         = "SPACE"
)

// fault is one injected failure. A status fault (HTTP status or dropped
// connection) answers before authentication, as a proxy or an overloaded
// front end would; an upload-status fault answers a valid FileUpload
// request with HTTP 200 and that status instead of storing the file.
type fault struct {
	status       int
	retryAfter   time.Duration
	drop         bool
	uploadStatus string
	lost         Lost // how a phase "after" fault loses the answer
}

// uploadStatusKey queues upload-status faults apart from a step's HTTP
// faults.
const uploadStatusKey = StepUpload + "/status"

// Fail makes the next n requests of step ("token" or "FileUpload") answer
// the HTTP status, with Retry-After when retryAfter is positive.
func (s *Server) Fail(step string, n int, status int, retryAfter time.Duration) {
	s.inject(step, n, fault{status: status, retryAfter: retryAfter})
}

// FailNext makes the next request of step answer 503, as Blueworks does
// when briefly unavailable.
func (s *Server) FailNext(step string) { s.Fail(step, 1, http.StatusServiceUnavailable, 0) }

// Drop makes the next n requests of step lose their connection: the fake
// reads part of the body, then closes the connection without answering.
func (s *Server) Drop(step string, n int) { s.inject(step, n, fault{drop: true}) }

// FailUpload makes the next n valid FileUpload requests answer HTTP 200
// with status FAILED, FAILED_DELETED, SIZE or SPACE, without storing the
// file.
func (s *Server) FailUpload(n int, status string) error {
	switch status {
	case StatusFailed, StatusFailedDeleted, StatusSize, StatusSpace:
	default:
		return fmt.Errorf("upload status %q: want FAILED, FAILED_DELETED, SIZE or SPACE", status)
	}
	s.inject(uploadStatusKey, n, fault{uploadStatus: status})
	return nil
}

func (s *Server) inject(key string, n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[key] = append(s.faults[key], f)
	}
}

// take removes and returns the next fault queued under key.
func (s *Server) take(key string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[key]
	if len(q) == 0 {
		return fault{}, false
	}
	s.faults[key] = q[1:]
	return q[0], true
}

// injectFault answers r with the next HTTP fault of step, if one is
// queued, and reports whether it did.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, step string) bool {
	f, ok := s.take(step)
	if !ok {
		return false
	}
	rec := Request{Step: step, Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	if f.drop {
		// Drop mid-transfer: take some of the body, then hang up.
		_, _ = io.CopyN(io.Discard, r.Body, 32<<10)
		rec.Dropped, rec.Fault = true, "drop"
		s.record(rec)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // closes the connection where Hijack cannot
	}
	// Read the body first, so the client sees the answer rather than a
	// reset while it is still sending.
	_, _ = io.Copy(io.Discard, r.Body)
	rec.Status, rec.Fault = f.status, "status "+strconv.Itoa(f.status)
	s.record(rec)
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.retryAfter+time.Second-1)/time.Second)))
	}
	writeError(w, f.status, "injected_fault", http.StatusText(f.status))
	return true
}

// afterKey queues, under a step, the faults of phase "after".
const afterKey = "/after"

// Lost is how a request carried out in full loses its answer (a fault of
// phase "after").
type Lost string

// The ways an answer is lost.
const (
	// LostDrop closes the connection without an answer.
	LostDrop Lost = "drop"
	// LostGateway answers 502 with an HTML page, as a proxy or load
	// balancer in front of Blueworks does when the backend's answer did
	// not reach it.
	LostGateway Lost = "gateway"
	// LostGarbled answers 200 with an HTML page instead of the JSON
	// answer, as a captive proxy does.
	LostGarbled Lost = "garbled"
	// LostLate holds the answer until the client gives up (its request is
	// canceled, at most LateHoldMax), then closes the connection.
	LostLate Lost = "late"
)

// LateHoldMax bounds how long LostLate holds an answer.
const LateHoldMax = 30 * time.Second

// LoseAnswer makes the next request of step ("token", "FileUpload" or
// "ListFiles") be served in full (a token issued, the file attached), then
// lose its connection before the answer: the phase "after" of a fault.
func (s *Server) LoseAnswer(step string) { s.inject(step+afterKey, 1, fault{lost: LostDrop}) }

// LoseAnswerAs is LoseAnswer with the answer lost the way how says.
func (s *Server) LoseAnswerAs(step string, how Lost) error {
	switch how {
	case LostDrop, LostGateway, LostGarbled, LostLate:
	default:
		return fmt.Errorf("lost answer %q: want drop, gateway, garbled or late", how)
	}
	s.inject(step+afterKey, 1, fault{lost: how})
	return nil
}

// loseAnswer answers, or not, a request already carried out.
func loseAnswer(w http.ResponseWriter, r *http.Request, how Lost) {
	switch how {
	case LostGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		return
	case LostGarbled:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<html><body>Please wait while we check your connection.</body></html>\n")
		return
	case LostLate:
		t := time.NewTimer(LateHoldMax)
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		t.Stop()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // closes the connection where Hijack cannot
}

// RefuseLookup makes the next ListFiles answer 503: a lookup that failed,
// which the connector must not read as "the file is not there".
func (s *Server) RefuseLookup() { s.FailNext(StepList) }

// RefuseCredentials makes the token endpoint refuse the client for d with
// 401 invalid_client, as after the client secret was rotated, and ends
// every token issued so far (FileUpload answers 401: "The user isn't
// authorized to make the request").
func (s *Server) RefuseCredentials(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = time.Now().Add(d) // the wall clock, whatever the fake clock
	clear(s.tokens)
}

func (s *Server) refusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.refuseUntil)
}

// Creations is how many files the fake attached.
func (s *Server) Creations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.attachments)
}
