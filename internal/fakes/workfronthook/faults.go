package workfronthook

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Mode is how an injected fault hits a request.
type Mode string

// Fault modes. A fault hits only a request the fake would otherwise accept
// (right method, right key, required parameters present), so that it is not
// spent on a request refused anyway.
const (
	// ModeStatus answers Status (default 503) with Retry-After, when set,
	// and the error envelope. An upload's body is read and discarded first
	// so the client reliably sees the answer.
	ModeStatus Mode = "status"
	// ModeDrop closes the connection without an answer before doing
	// anything.
	ModeDrop Mode = "drop"
	// ModeDropAfter does the work (creates the document, stores the bytes)
	// and then closes the connection without an answer: the answer is lost.
	ModeDropAfter Mode = "drop-after"
	// ModeResultFail (upload only) reads the bytes, stores nothing and
	// answers 200 {"result":"fail"}.
	ModeResultFail Mode = "result-fail"
	// ModeForget (upload only) makes the provider forget the placeholder
	// named by the request, as if it had expired, so the upload is 404. It
	// does not touch a document already uploaded.
	ModeForget Mode = "forget"
)

// Fault is a failure injected into the next Count requests of Step.
type Fault struct {
	// Step is StepUploadInit or StepUpload.
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
	case f.Step != StepUploadInit && f.Step != StepUpload:
		return fmt.Errorf("fault step %q: want %s or %s", f.Step, StepUploadInit, StepUpload)
	case f.Count < 0:
		return fmt.Errorf("fault count %d is negative", f.Count)
	case f.Mode == ModeStatus && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fault status %d: want a 4xx or 5xx", f.Status)
	case f.Mode == ModeResultFail || f.Mode == ModeForget:
		if f.Step != StepUpload {
			return fmt.Errorf("fault mode %s applies to %s only", f.Mode, StepUpload)
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
// as a provider briefly unavailable does.
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
	switch fault.Mode {
	case ModeStatus:
		rec.Fault = fault.Mode
		_, _ = io.Copy(io.Discard, r.Body)
		if fault.RetryAfter > 0 {
			secs := int64((fault.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		s.replyError(w, rec, fault.Status, "injected fault: "+http.StatusText(fault.Status))
		return true
	case ModeDrop:
		s.drop(w, rec, fault.Mode)
		return true
	}
	rec.Fault = fault.Mode
	return false
}

// drop records the request, then closes the connection without an answer.
func (s *Server) drop(w http.ResponseWriter, rec *Request, mode Mode) {
	rec.Fault, rec.Status = mode, 0
	s.record(*rec)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

// LoseAnswer makes the next request of step be carried out (the document
// created, the bytes stored), then lose its connection before the answer:
// the phase "after" of a fault.
func (s *Server) LoseAnswer(step string) {
	if err := s.Inject(Fault{Step: step, Mode: ModeDropAfter}); err != nil {
		panic(err)
	}
}

// RefuseLookup does nothing: the Document Webhooks upload API ("Chargement
// de fichiers via Document Webhooks": uploadInit, upload) has no call that
// finds a document by anything ferry knows before uploadInit answered.
func (s *Server) RefuseLookup() {}

// RefuseCredentials makes the provider refuse every API key for d, with
// the 403 the spec names for missing or invalid tokens.
func (s *Server) RefuseCredentials(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = time.Now().Add(d) // the wall clock, whatever the fake clock
}

// Creations is how many documents uploadInit created, placeholders
// included: a document whose uploadInit answer was lost, created again by
// a retry, counts twice.
func (s *Server) Creations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inits
}
