package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// settingsError is a configuration the process cannot start with: main
// exits with status 2 (a usage error), not 1.
type settingsError struct{ err error }

func (e *settingsError) Error() string { return e.err.Error() }
func (e *settingsError) Unwrap() error { return e.err }

// badSetting says which variable had which value and what was expected.
func badSetting(name, value, want string) error {
	return fmt.Errorf("%s=%q: want %s", name, value, want)
}

// envSettings reads settings from the environment strictly: an unset or
// empty variable is its default; any other value must parse, or the error
// naming it is kept for checkEnv. Nothing malformed is silently replaced by
// a default.
type envSettings struct{ errs []error }

func (e *envSettings) lookup(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// duration reads a Go duration ("30s", "5m", "1h30m") of at least minimum.
func (e *envSettings) duration(name string, def, minimum time.Duration) time.Duration {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		e.errs = append(e.errs, badSetting(name, v, "a duration with its unit, like 30s, 5m or 1h (no days: 168h)"))
		return def
	case d < minimum || d < 0:
		e.errs = append(e.errs, badSetting(name, v, "a duration of at least "+max(minimum, 0).String()))
		return def
	}
	return d
}

// bytes reads a positive number of bytes, digits only.
func (e *envSettings) bytes(name string, def int64) int64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		e.errs = append(e.errs, badSetting(name, v, "a number of bytes, digits only (10 GiB is 10737418240)"))
		return def
	}
	return n
}

// integer reads a whole number from lo to hi.
func (e *envSettings) integer(name string, def, lo, hi int) int {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.errs = append(e.errs, badSetting(name, v, fmt.Sprintf("a whole number from %d to %d", lo, hi)))
		return def
	}
	return n
}

// boolean reads true/false (and 1/0, as strconv.ParseBool does).
func (e *envSettings) boolean(name string) bool {
	v, ok := e.lookup(name)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, badSetting(name, v, "true or false (or 1 or 0)"))
		return false
	}
	return b
}

// oneOf reads one of the allowed words.
func (e *envSettings) oneOf(name, def string, allowed ...string) string {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	if !slices.Contains(allowed, v) {
		e.errs = append(e.errs, badSetting(name, v, strings.Join(allowed, " or ")))
		return def
	}
	return v
}

// rate reads a request rate (parseRate); unset, it is 0 (no limit).
func (e *envSettings) rate(name string) float64 { return e.rateOr(name, 0) }

// rateOr reads a request rate (parseRate), def when unset.
func (e *envSettings) rateOr(name string, def float64) float64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	r, err := parseRate(v)
	if err != nil {
		e.errs = append(e.errs, badSetting(name, v, "a number of requests, optionally per /s, /m or /h (like 20 or 600/m), or 0 for no limit"))
		return def
	}
	return r
}
