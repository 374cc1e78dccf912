package sink

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Faults: injected with Fail, LoseAnswer, RefuseLookup and
// RefuseCredentials, over the control API (control.go), or at random
// with Options.FailRate.

// fault is a failure injected into the next requests.
type fault struct {
	left       int
	status     int
	retryAfter time.Duration
	drop       bool
	// after stores the document, then drops the connection: the answer
	// is lost.
	after bool
	// step, when set, is the only kind of request the fault hits: put,
	// head or delete on a document path (documents.go).
	step string
}

// LoseAnswer makes the next upload be stored, then lose its connection
// before the answer: the phase "after" of a fault. step "put" or "delete"
// aims at the next PUT or DELETE of a document path (documents.go); any
// other step at the next upload.
func (s *Server) LoseAnswer(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if step != StepPut && step != StepDelete {
		step = ""
	}
	s.faults = append(s.faults, fault{left: 1, after: true, step: step})
}

// RefuseLookup makes the next probe answer 503.
func (s *Server) RefuseLookup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probeFaults++
}

// RefuseCredentials makes every upload answer 401 for d, as a receiver
// whose token was revoked.
func (s *Server) RefuseCredentials(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = time.Now().Add(d)
}

// Fail makes the next n requests fail with status (and a Retry-After
// header when retryAfter > 0). Status 0 drops the connection instead.
func (s *Server) Fail(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{left: n, status: status, retryAfter: retryAfter, drop: status == 0})
}

// nextFault takes the next fault for a request of step ("" for an
// upload to a plain path): the first queued for any request or for that
// step.
func (s *Server) nextFault(step string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		if s.faults[i].step != "" && s.faults[i].step != step {
			continue
		}
		f := s.faults[i]
		s.faults[i].left--
		if s.faults[i].left <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f, true
	}
	if s.opts.FailRate > 0 && rand.Float64() < s.opts.FailRate {
		return fault{status: http.StatusServiceUnavailable}, true
	}
	return fault{}, false
}

// injected answers a fault that is not a lost answer.
func (s *Server) injected(w http.ResponseWriter, f fault) int {
	if f.drop {
		dropConnection(w)
		return 0
	}
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter.Seconds())))
	}
	return reply(w, f.status, "injected failure")
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
