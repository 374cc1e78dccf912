package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a delivery failure with what the worker needs to decide its fate.
type Error struct {
	// Err is the underlying failure.
	Err error
	// Permanent means no retry can succeed, and the failure is about this
	// job (its file, its parameters, the item it names), not the target's
	// health: the job fails at once and the failure does not count
	// towards opening the target's circuit breaker. A target that is down
	// answers retryable errors; refused credentials are Credentials.
	Permanent bool
	// RetryAfter is the least wait the target asked for, zero if none.
	RetryAfter time.Duration
	// StatusCode is the HTTP status that caused the failure, zero if none.
	StatusCode int
	// Credentials means the target refused the connector's credentials
	// after the one renewal the connector makes (a new session or token):
	// the target, not the file, is at fault. The worker pauses the target
	// and fails no job for it; a refusal about one object (a 403 on one
	// folder) is a Permanent error instead.
	Credentials bool
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying failure.
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as a refusal of this job that retrying cannot fix
// (see Error.Permanent).
func Permanent(err error) error {
	var te *Error
	if errors.As(err, &te) {
		cp := *te
		cp.Permanent = true
		cp.Err = err
		return &cp
	}
	return &Error{Err: err, Permanent: true}
}

// CredentialsRefused marks err as the target refusing the connector's
// credentials after its one renewal: never permanent, whatever err said.
func CredentialsRefused(err error) error {
	var te *Error
	if errors.As(err, &te) {
		cp := *te
		cp.Credentials, cp.Permanent, cp.Err = true, false, err
		return &cp
	}
	return &Error{Err: err, Credentials: true}
}

// IsCredentials reports whether err is a refusal of the credentials.
func IsCredentials(err error) bool {
	var te *Error
	return errors.As(err, &te) && te.Credentials
}

// RetryAfter marks err as retryable no sooner than after d.
func RetryAfter(err error, d time.Duration) error {
	return &Error{Err: err, RetryAfter: d}
}

// Classify returns the delivery error for err: the *Error inside it if there
// is one, otherwise a retryable one (connection errors, timeouts and anything
// unknown are worth another try).
func Classify(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	return &Error{Err: err}
}

// IsPermanent reports whether err is a permanent delivery failure.
func IsPermanent(err error) bool {
	var te *Error
	return errors.As(err, &te) && te.Permanent
}

// StatusError turns a non-2xx HTTP response into a delivery error: 408, 429
// and 5xx are retryable (honouring Retry-After), every other status is
// permanent. what names the step, such as "upload". It reads at most 512 bytes
// of the body for the message; the caller still closes it.
func StatusError(what string, resp *http.Response) error {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(snippet))
	var err error
	if msg != "" {
		err = fmt.Errorf("%s: HTTP %d: %s", what, resp.StatusCode, msg)
	} else {
		err = fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)
	}
	te := &Error{Err: err, StatusCode: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		te.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		te.Permanent = true
	}
	return te
}

// RetryAfterMax is the longest wait ParseRetryAfter returns: beyond it a
// value means "a very long time", and the worker caps it at the target's
// max_retry_after anyway.
const RetryAfterMax = 100 * 365 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After header given in seconds or as an HTTP
// date, relative to now. It returns zero for an empty, invalid or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		// Too many digits for an int64 is still "wait very long".
		if err != nil || secs > int64(RetryAfterMax/time.Second) {
			return RetryAfterMax
		}
		// A huge value must not overflow into a negative wait.
		return time.Duration(min(secs, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs <= 0 {
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, RetryAfterMax)
		}
	}
	return 0
}

// TransportError wraps an error from an HTTP client call (connection refused,
// reset, timeout) as a retryable delivery error, unless ctx itself was
// canceled, in which case the cancellation is returned so the worker can tell
// a shutdown from a failure.
func TransportError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return &Error{Err: fmt.Errorf("%s: %w", what, err)}
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
