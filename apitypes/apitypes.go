// Package apitypes holds the JSON bodies of ferry's HTTP API: what the
// server writes and reads, and what the client and the CLI decode. It is
// the wire contract, kept apart from the job store's types so that a
// client build needs neither the database driver nor the server, and so
// that a change to how jobs are stored cannot change the API by accident.
//
// It imports only the standard library. The server converts its store
// types to these at the edge (package api); the OpenAPI document served at
// GET /v1/openapi.json describes the same shapes.
package apitypes

import "time"

// Error is the body of every error answer:
// {"error":{"code":"...","message":"..."}}.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Code is ferry's error code: bad_request, unauthorized, not_found,
	// conflict, too_large, invalid_params, batch_target_mismatch,
	// internal, ...
	Code string `json:"code"`
	// Message is meant for people.
	Message string `json:"message"`
}

// Target is a configured target as GET /v1/targets lists it.
type Target struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	MaxAttempts int    `json:"max_attempts"`
	Concurrency int    `json:"concurrency"`
	// MaxFileBytes is the target's size limit, 0 (left out) when it has
	// none.
	MaxFileBytes int64 `json:"max_file_bytes,omitempty"`
	// MaxUploadBytes is the server's limit on one file, whatever the
	// target (FERRY_MAX_UPLOAD_BYTES): a larger upload is refused with
	// 413. Left out by servers that predate it.
	MaxUploadBytes int64 `json:"max_upload_bytes,omitempty"`
	// State is the target's delivery health, shared by every process:
	// ok, circuit_open (deliveries keep failing; paused and probed) or
	// paused_credentials (credentials refused; no job fails, deliveries
	// resume by themselves once a probe succeeds).
	State string `json:"state"`
	// Reason is why the target left ok: the last refusal.
	Reason string `json:"reason,omitempty"`
	// Since is when the target entered its state, if it ever left ok.
	Since *time.Time `json:"since,omitempty"`
	// NextProbeAt is when a paused target (paused_credentials), or one
	// whose circuit is open, is next probed, when known.
	NextProbeAt *time.Time `json:"next_probe_at,omitempty"`
	// Limits are the caps shared across targets and processes that the
	// target's deliveries count against.
	Limits []TargetLimit `json:"limits,omitempty"`
	// Rate is the target's request rate shared by every worker process,
	// left out when it has no `rate`.
	Rate *TargetRate `json:"rate,omitempty"`
}

// TargetLimit is a cap shared across target entries and worker processes
// (limit_group, max_in_flight, a Workfront instance's requests).
type TargetLimit struct {
	Group string `json:"group"`
	Max   int    `json:"max"`
	// InFlight is how many deliveries hold a slot now, every process
	// counted.
	InFlight int `json:"in_flight"`
}

// ResumeResult is the answer of POST /v1/targets/{name}/resume.
type ResumeResult struct {
	Target Target `json:"target"`
	// ProbeRequested is true when the target was paused and a probe is
	// now due at once; false when it was not paused (nothing to do).
	ProbeRequested bool `json:"probe_requested"`
}

// TargetRate is a target's adaptive request rate: a 429 or 503 lowers
// Current below Max for a while, successes raise it back slowly.
type TargetRate struct {
	// Current is the requests per second allowed right now.
	Current float64 `json:"current"`
	// Max is the configured `rate`.
	Max   float64 `json:"max"`
	Burst int     `json:"burst"`
	// LoweredAt is when a 429 or 503 last lowered it; absent if never.
	LoweredAt *time.Time `json:"lowered_at,omitempty"`
}

// TargetList is the body of GET /v1/targets.
type TargetList struct {
	Targets []Target `json:"targets"`
}

// CheckRequest is the body of POST /v1/targets/{name}/check: would
// uploads with these parameters be accepted?
type CheckRequest struct {
	// Params are the upload's param.<name> fields.
	Params map[string]string `json:"params"`
	// Batch, when it names a batch object, adds its parameters as
	// defaults, as an upload naming it would.
	Batch string `json:"batch"`
	// Size, when set, is checked against the target's limit.
	Size *int64 `json:"size"`
}

// CheckResult is the answer of POST /v1/targets/{name}/check when the
// uploads would be accepted.
type CheckResult struct {
	OK     bool   `json:"ok"`
	Target string `json:"target"`
	// Params are the parameters a job would get: the upload's over the
	// batch's over the target's defaults.
	Params map[string]string `json:"params"`
}
