package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
)

// The API's edge for errors: every handler answers a failure with
// s.fail(w, r, err), and this file alone decides what the client sees. An
// *apiError carries its own answer; a domain error is looked up in
// answers; a store outage is 503 with Retry-After; anything else is 500,
// its cause logged and never shown.

// apiError is an error with its HTTP answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, a...)}
}

// answer is how the API answers one domain error.
type answer struct {
	err    error
	status int
	code   string
	// msg is the message shown; nil shows the error's own text.
	msg func(r *http.Request, err error) string
}

// answers maps the domain errors of the packages behind the API to their
// answers: the one table. The first entry err matches (errors.Is) wins.
var answers = []answer{
	{jobs.ErrNotFound, http.StatusNotFound, "not_found", func(r *http.Request, err error) string {
		if id := r.PathValue("id"); id != "" {
			return "no job with id " + strconv.Quote(id)
		}
		return err.Error()
	}},
	{jobs.ErrBatchNotFound, http.StatusNotFound, "not_found", func(r *http.Request, err error) string {
		if name := r.PathValue("name"); name != "" {
			return "no batch named " + strconv.Quote(name)
		}
		return err.Error()
	}},
	{jobs.ErrDocumentNotFound, http.StatusNotFound, "not_found", func(r *http.Request, err error) string {
		if id := r.PathValue("id"); id != "" {
			return "no document with id " + strconv.Quote(id)
		}
		return "no such document"
	}},
	{jobs.ErrConflict, http.StatusConflict, "conflict", nil},
	{jobs.ErrBatchExists, http.StatusConflict, "conflict", nil},
	{jobs.ErrInvalidCursor, http.StatusBadRequest, "bad_request", func(*http.Request, error) string {
		return "invalid cursor"
	}},
	{jobs.ErrKeyReserved, http.StatusBadRequest, "bad_request", nil},
	{jobs.ErrKeyReused, http.StatusConflict, "idempotency_key_reused", func(r *http.Request, _ error) string {
		return fmt.Sprintf("Idempotency-Key %q was used for another request (other files, target or fields); use a new key",
			r.Header.Get("Idempotency-Key"))
	}},
	{apikeys.ErrNotFound, http.StatusNotFound, "not_found", nil},
	{apikeys.ErrAmbiguous, http.StatusConflict, "ambiguous", nil},
	{apikeys.ErrExists, http.StatusConflict, "conflict", nil},
	{apikeys.ErrSpec, http.StatusBadRequest, "bad_request", nil},
}

// unavailableRetryAfter is the Retry-After of a 503 for a store outage:
// long enough for a restarted Postgres to take connections again.
const unavailableRetryAfter = "5"

// fail answers err: its own answer for an *apiError, the table's for a
// domain error, 503 for a store outage (jobs.Unavailable), 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", unavailableRetryAfter)
		}
		writeError(w, ae.status, ae.code, ae.msg)
		return
	}
	for _, a := range answers {
		if errors.Is(err, a.err) {
			msg := err.Error()
			if a.msg != nil {
				msg = a.msg(r, err)
			}
			writeError(w, a.status, a.code, msg)
			return
		}
	}
	if r.Context().Err() != nil {
		// The client went away: nobody reads the answer, and nothing
		// failed on ferry's side.
		s.log.InfoContext(r.Context(), "request ended by the client", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "request canceled")
		return
	}
	if jobs.Unavailable(err) {
		s.log.WarnContext(r.Context(), "job store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		msg := "the job store is unavailable: retry after " + unavailableRetryAfter + "s"
		if errors.Is(err, jobs.ErrOutcomeUnknown) {
			msg = "the job store stopped answering while this upload was recorded, so whether it was is unknown: " +
				"retry after " + unavailableRetryAfter + "s with the same Idempotency-Key to get its jobs"
		}
		w.Header().Set("Retry-After", unavailableRetryAfter)
		writeError(w, http.StatusServiceUnavailable, "unavailable", msg)
		return
	}
	s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error; see the server log")
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	noteErrorCode(w, errCode)
	writeJSON(w, code, apitypes.Error{Error: apitypes.ErrorDetail{Code: errCode, Message: msg}})
}
