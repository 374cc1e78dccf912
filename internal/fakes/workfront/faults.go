package workfront

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Fault modes.
const (
	// ModeStatus answers an HTTP status with the error envelope, before
	// looking at credentials, as an overloaded front end does.
	ModeStatus = "status"
	// ModeError200 answers HTTP 200 with the error envelope, as Workfront
	// sometimes does.
	ModeError200 = "error200"
	// ModeDrop closes the connection without reading the request or
	// answering.
	ModeDrop = "drop"
	// ModeDropAfter serves the request (a document is created, a handle
	// given), then closes the connection without answering: the client
	// cannot know it succeeded.
	ModeDropAfter = "drop-after"
	// ModeExpire ends every session just before serving the request, so
	// that a request with a session gets 401.
	ModeExpire = "expire"
)

// Fault is one injected failure of one request.
type Fault struct {
	// Mode is one of the Mode constants (default ModeStatus).
	Mode string
	// Status is the HTTP status of ModeStatus (default 503).
	Status int
	// RetryAfter, when positive, is sent as Retry-After in whole seconds.
	RetryAfter time.Duration
	// Class and Message fill the error envelope of ModeStatus and
	// ModeError200 (default: a class fitting the status, "injected fault").
	Class   string
	Message string
}

// Inject makes the next n requests of step (login, upload, document,
// search, get, logout) fail as f says.
func (s *Server) Inject(step string, n int, f Fault) {
	f.Mode = cmp.Or(f.Mode, ModeStatus)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[step] = append(s.faults[step], f)
	}
}

// Fail makes the next n requests of step answer the HTTP status with the
// error envelope, and Retry-After when retryAfter is positive.
func (s *Server) Fail(step string, n int, status int, retryAfter time.Duration) {
	s.Inject(step, n, Fault{Mode: ModeStatus, Status: status, RetryAfter: retryAfter})
}

// FailNext makes the next request of step answer 503, as Workfront does
// when briefly unavailable.
func (s *Server) FailNext(step string) { s.Fail(step, 1, http.StatusServiceUnavailable, 0) }

// Drop makes the next n requests of step lose their connection before
// they are served.
func (s *Server) Drop(step string, n int) { s.Inject(step, n, Fault{Mode: ModeDrop}) }

// DropAfter makes the next n requests of step be served, then lose their
// connection before the answer.
func (s *Server) DropAfter(step string, n int) { s.Inject(step, n, Fault{Mode: ModeDropAfter}) }

// Error200 makes the next n requests of step answer HTTP 200 with an error
// envelope of class (default com.attask.common.InternalException).
func (s *Server) Error200(step string, n int, class, message string) {
	s.Inject(step, n, Fault{Mode: ModeError200, Class: class, Message: message})
}

// take removes and returns the next fault queued for step.
func (s *Server) take(step string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[step]
	if len(q) == 0 && (step == StepSearch || step == StepDocvFind) {
		step = StepLookup
		q = s.faults[step]
	}
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[step] = q[1:]
	return q[0], true
}

// answer writes the failure of a ModeStatus or ModeError200 fault.
func (f Fault) answer(w http.ResponseWriter, r *http.Request, rec *Request) {
	status := cmp.Or(f.Status, http.StatusServiceUnavailable)
	if f.Mode == ModeError200 {
		status = http.StatusOK
	}
	if f.RetryAfter > 0 {
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	class := f.Class
	if class == "" {
		switch {
		case f.Mode == ModeError200 || status >= 500:
			class = ClassInternal
		case status == http.StatusTooManyRequests:
			class = ClassTooManyRequests
		case status == http.StatusUnauthorized:
			class = ClassAuthentication
		case status == http.StatusNotFound:
			class = ClassNotFound
		default:
			class = ClassInvalidParameter
		}
	}
	msg := cmp.Or(f.Message, fmt.Sprintf("injected fault (%s %d)", f.Mode, status))
	writeError(w, r, rec, status, class, msg)
}

// LoseAnswer makes the next request of step be carried out (a document
// created, a handle given, a session opened), then lose its connection
// before the answer: the phase "after" of a fault.
func (s *Server) LoseAnswer(step string) { s.DropAfter(step, 1) }

// RefuseLookup makes the next search (of documents or of document
// versions) fail with 404 and Workfront's NotFoundException envelope: a
// search that failed, which a client must not read as "no such document".
func (s *Server) RefuseLookup() {
	s.Inject(StepLookup, 1, Fault{Mode: ModeStatus, Status: http.StatusNotFound, Class: ClassNotFound, Message: "injected: search unavailable"})
}

// RefuseCredentials makes the instance refuse every credential for d, as
// after a password change or a revoked API key: login answers 401 with
// AuthenticationException ("Invalid username or password."), and every
// session and API key is refused with 401 until d has passed. Sessions
// opened before are ended. (Workfront REST API basics, "Authentification":
// a request without valid credentials is not served.)
func (s *Server) RefuseCredentials(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = s.opts.Now().Add(d)
	clear(s.sessions)
}

// refusing reports whether credentials are being refused now.
func (s *Server) refusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusingLocked()
}

func (s *Server) refusingLocked() bool { return s.opts.Now().Before(s.refuseUntil) }

// Creations is how many documents the fake created, deleted ones
// included.
func (s *Server) Creations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs) + s.deleted
}
