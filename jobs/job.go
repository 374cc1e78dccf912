// Package jobs holds ferry's job model, its states, and the Postgres store
// that is the single source of truth for where every file is.
//
// A job is one accepted file on its way to one target. Its life:
//
//	QUEUED ──claim──▶ RUNNING ──▶ SUCCESS
//	   ▲                 │  └────▶ FAILED ──retry──▶ QUEUED
//	   │                 ▼
//	   └──(release)── RETRYING ──claim──▶ RUNNING ...
//
// QUEUED and RETRYING jobs can be CANCELED. A worker owns a RUNNING job
// through a lease it renews; a job whose lease expires (its worker died) is
// made RETRYING again by Store.RecoverExpired.
//
// The writes every job makes (its record, claim and finish) go through a
// combiner (combine.go): the writes of concurrent callers share one
// pipelined batch and one commit, which is most of what a small file costs
// Postgres. The Enqueuer (internal/enqueue) is the one path from a committed job
// to the queue.
//
// jobs stays at the top of the tree by request; it carries no
// import-compatibility promise to code outside this module.
package jobs

import (
	"errors"
	"time"
)

// Status is where a job stands.
type Status string

// The statuses of a job.
const (
	StatusQueued   Status = "QUEUED"
	StatusRunning  Status = "RUNNING"
	StatusRetrying Status = "RETRYING"
	StatusSuccess  Status = "SUCCESS"
	StatusFailed   Status = "FAILED"
	StatusCanceled Status = "CANCELED"
	// StatusSuperseded is a version of a document overtaken by a newer one
	// before it started (document.go): final, never delivered.
	StatusSuperseded Status = "SUPERSEDED"
)

// Statuses lists every status.
var Statuses = []Status{StatusQueued, StatusRunning, StatusRetrying, StatusSuccess, StatusFailed, StatusCanceled, StatusSuperseded}

// Final reports whether no more delivery will be attempted without a person
// asking for it.
func (s Status) Final() bool {
	return s == StatusSuccess || s == StatusFailed || s == StatusCanceled || s == StatusSuperseded
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Errors returned by the store.
var (
	// ErrNotFound means no job has that id.
	ErrNotFound = errors.New("job not found")
	// ErrConflict means the job is not in a state that allows the change.
	ErrConflict = errors.New("job is not in a state that allows this")
	// ErrLeaseLost means the worker no longer owns the running job.
	ErrLeaseLost = errors.New("job lease lost")
)

// Job is one accepted file on its way to one target.
type Job struct {
	ID             string
	Tenant         string
	Target         string
	Batch          string
	Filename       string
	ContentType    string
	Size           int64
	SHA256         string
	ObjectKey      string
	Params         map[string]string
	Status         Status
	Attempts       int
	MaxAttempts    int
	NextAttemptAt  *time.Time
	LastError      string
	RemoteID       string
	Checkpoint     map[string]string
	IdempotencyKey string
	APIKeyID       int64
	LeaseOwner     string
	LeaseExpiresAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     *time.Time
	// DocumentID, DocumentKey and Version name the document this job is a
	// version of (document.go); empty and 0 for a job without one.
	DocumentID  string
	DocumentKey string
	Version     int
	// Op is OpPut (a file) or OpDelete (a document's delete, no file).
	Op string
	// Recorded says what recording did with this job; set only on the
	// answer of RecordRequest or SameVersion.
	Recorded Recorded
	// TraceParent is the W3C traceparent of the upload that made the job
	// (issue 25): every attempt's span joins that trace. Empty when the
	// upload was not traced.
	TraceParent string
}

// Attempt is one try at delivering a job.
type Attempt struct {
	Number     int
	Worker     string
	StartedAt  time.Time
	FinishedAt *time.Time
	// Outcome is RUNNING, SUCCESS, RETRY, FAILED, INTERRUPTED (handed back
	// at shutdown), ABANDONED (its worker died) or CANCELED.
	Outcome    string
	HTTPStatus int
	Error      string
	// Uncertain says why the attempt repeated a creating step that may
	// have landed unheard; empty for most.
	Uncertain string
	// DurationMS is how long the attempt took, once finished.
	DurationMS int64
}

// Outcomes of an attempt.
const (
	OutcomeRunning     = "RUNNING"
	OutcomeSuccess     = "SUCCESS"
	OutcomeRetry       = "RETRY"
	OutcomeFailed      = "FAILED"
	OutcomeInterrupted = "INTERRUPTED"
	OutcomeAbandoned   = "ABANDONED"
)

// New is what the API knows of a job when it records it.
type New struct {
	ID string
	// Tenant owns the job; TenantDefault when empty.
	Tenant         string
	Target         string
	Batch          string
	Filename       string
	ContentType    string
	Size           int64
	SHA256         string
	ObjectKey      string
	Params         map[string]string
	MaxAttempts    int
	IdempotencyKey string
	APIKeyID       int64
	// ClientPath is the client's path of the file, kept for the batch
	// report.
	ClientPath string
	// DocumentKey, when set, makes the job a version of the document of
	// that key at (Tenant, Target) (document.go).
	DocumentKey string
	// TraceParent is the W3C traceparent of the upload's span, kept with
	// the job so that a message republished from Postgres stays in the
	// file's trace; empty when the upload is not traced.
	TraceParent string
}

// Filter selects jobs for List. Empty fields match everything.
type Filter struct {
	Status Status
	Target string
	Batch  string
	// Uncertain keeps the jobs with an attempt marked uncertain.
	Uncertain bool
	// FilenameContains matches jobs whose file name contains it, ignoring
	// case.
	FilenameContains string
	// Limit is the page size (1-1000, default 100).
	Limit int
	// Cursor is the id of the last job of the previous page.
	Cursor string
}

// Ref names a job to (re)publish on the queue.
type Ref struct {
	ID     string
	Target string
	// Version is the job's updated_at when the Ref was read: marking it
	// enqueued is skipped if the job changed since.
	Version time.Time
	// TraceParent is the job's (Job.TraceParent): its message carries it.
	TraceParent string
}
