package fourd

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Mode is how an injected fault hits a request.
type Mode string

// Fault modes. A fault hits only a request with the right method on a
// known path; it is taken before the session is checked, as a proxy or an
// overloaded server answers whoever asks.
const (
	// ModeStatus answers Status (default 503) with Retry-After, when set,
	// and a 4D error body {"__ERROR":[{message, componentSignature "dbmg",
	// errCode}]} carrying ErrCode (0 by default: a message without a 4D
	// code, as a proxy in front of 4D answers). The body is read and
	// discarded first so the client reliably sees the answer.
	ModeStatus Mode = "status"
	// ModeDrop closes the connection without an answer before doing
	// anything.
	ModeDrop Mode = "drop"
	// ModeDropAfter does the work (stores the upload, saves the entity)
	// and then closes the connection: the answer is lost.
	ModeDropAfter Mode = "drop-after"
	// ModeStale (update only) has another user save the entity just
	// before the update is processed, so its __STAMP is stale.
	ModeStale Mode = "stale"
	// ModeExpireUpload (update only) expires the upload IDs the update
	// names just before it is processed, as if their $timeout had passed.
	ModeExpireUpload Mode = "expire-upload"
)

// Fault is a failure injected into the next Count requests of Step.
type Fault struct {
	// Step is StepLogin, StepRead, StepUpload or StepUpdate.
	Step string
	// Count is how many requests it hits (default 1).
	Count int
	// Mode is how it hits them (default ModeStatus).
	Mode Mode
	// Status is the status of ModeStatus (default 503).
	Status int
	// RetryAfter, when positive, is sent as Retry-After in whole seconds
	// (rounded up) by ModeStatus.
	RetryAfter time.Duration
	// ErrCode is the errCode of ModeStatus's __ERROR entry, and Message
	// its message (default "injected fault: <status text>"): a 4D error
	// such as 1800 (no such dataclass) or 1542 (no such entity) at any
	// status.
	ErrCode int
	Message string
}

// Inject queues f behind the faults already pending for its step.
func (s *Server) Inject(f Fault) error {
	if f.Count == 0 {
		f.Count = 1
	}
	if f.Mode == "" {
		f.Mode = ModeStatus
	}
	if f.Mode == ModeStatus && f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	switch {
	case f.Step != StepLogin && f.Step != StepRead && f.Step != StepUpload && f.Step != StepUpdate:
		return fmt.Errorf("fault step %q: want %s, %s, %s or %s", f.Step, StepLogin, StepRead, StepUpload, StepUpdate)
	case f.Count < 0:
		return fmt.Errorf("fault count %d is negative", f.Count)
	case f.Mode == ModeStatus && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fault status %d: want a 4xx or 5xx", f.Status)
	case f.Mode == ModeStale || f.Mode == ModeExpireUpload:
		if f.Step != StepUpdate {
			return fmt.Errorf("fault mode %s applies to %s only", f.Mode, StepUpdate)
		}
	case f.Mode != ModeStatus && f.Mode != ModeDrop && f.Mode != ModeDropAfter:
		return fmt.Errorf("unknown fault mode %q", f.Mode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[f.Step] = append(s.faults[f.Step], &f)
	return nil
}

// Fail makes the next n requests of step answer status, with Retry-After
// when retryAfter is positive. It panics on an unknown step or a status
// that is not an error, mistakes of the calling test.
func (s *Server) Fail(step string, n, status int, retryAfter time.Duration) {
	if err := s.Inject(Fault{Step: step, Count: n, Mode: ModeStatus, Status: status, RetryAfter: retryAfter}); err != nil {
		panic(err)
	}
}

// FailNext makes the next request of step answer 503 with Retry-After: 1,
// as a 4D server briefly unavailable behind its proxy does.
func (s *Server) FailNext(step string) {
	s.Fail(step, 1, http.StatusServiceUnavailable, time.Second)
}

// takeFault spends one hit of the oldest fault pending for step.
func (s *Server) takeFault(step string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[step]
	if len(q) == 0 {
		return nil
	}
	f := *q[0]
	if q[0].Count--; q[0].Count <= 0 {
		s.faults[step] = q[1:]
	}
	return &f
}

// faultBefore applies the part of fault that comes before the work and
// reports whether the request is finished.
func (s *Server) faultBefore(w http.ResponseWriter, r *http.Request, rec *Request, fault *Fault) bool {
	if fault == nil {
		return false
	}
	rec.Fault = fault.Mode
	switch fault.Mode {
	case ModeStatus:
		_, _ = io.Copy(io.Discard, r.Body)
		if fault.RetryAfter > 0 {
			secs := int64((fault.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		msg := fault.Message
		if msg == "" {
			msg = "injected fault: " + http.StatusText(fault.Status)
		}
		s.replyError(w, rec, fault.Status, fault.ErrCode, msg)
		return true
	case ModeDrop:
		s.drop(w, rec, fault.Mode)
		return true
	}
	return false
}

// drop records rec, then closes the connection without an answer.
func (s *Server) drop(w http.ResponseWriter, rec *Request, mode Mode) {
	s.mu.Lock()
	rec.Fault, rec.Status = mode, 0
	s.recordLocked(rec)
	s.mu.Unlock()
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

// LoseAnswer makes the next request of step be carried out (the upload
// kept, the entity saved), then lose its connection before the answer: the
// phase "after" of a fault.
func (s *Server) LoseAnswer(step string) {
	if err := s.Inject(Fault{Step: step, Mode: ModeDropAfter}); err != nil {
		panic(err)
	}
}

// RefuseLookup makes the next read of an entity (GET
// /rest/{Dataclass}({key})) answer 503: a lookup that failed, which a
// client must not read as an answer.
func (s *Server) RefuseLookup() { s.Fail(StepRead, 1, http.StatusServiceUnavailable, 0) }

// RefuseCredentials makes the server refuse every login for d, answering
// {"result":false} as 4D does for a wrong username-4D/password-4D, and
// treat every session as ended (401) until then, as after the REST user's
// password was changed. A server without a username has no credentials to
// refuse.
func (s *Server) RefuseCredentials(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = time.Now().Add(d) // the wall clock: tests that move the fake clock still see the refusal end
	clear(s.sessions)
}

// Creations is how many files updates bound to attributes: a file bound
// again (a repeated update) counts again, though the entity then holds
// one.
func (s *Server) Creations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.binds
}
