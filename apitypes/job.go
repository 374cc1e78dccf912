package apitypes

import "time"

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
)

// Statuses lists every status, in the order of a job's life.
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

// Job is one accepted file on its way to one target.
type Job struct {
	ID string `json:"id"`
	// Tenant owns the job: the tenant of the key that uploaded it.
	Tenant        string            `json:"tenant"`
	Target        string            `json:"target"`
	Batch         string            `json:"batch,omitempty"`
	Filename      string            `json:"filename"`
	ContentType   string            `json:"content_type"`
	Size          int64             `json:"size"`
	SHA256        string            `json:"sha256"`
	Params        map[string]string `json:"params"`
	Status        Status            `json:"status"`
	Attempts      int               `json:"attempts"`
	MaxAttempts   int               `json:"max_attempts"`
	NextAttemptAt *time.Time        `json:"next_attempt_at"`
	LastError     string            `json:"last_error,omitempty"`
	RemoteID      string            `json:"remote_id,omitempty"`
	// Checkpoint holds the steps of a multi-step delivery already done.
	Checkpoint map[string]string `json:"checkpoint,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	// URL is the job's path in the API.
	URL string `json:"url"`
	// Document is the id of the document this job is a version of, ""
	// for a job without one; DocumentKey its key and Version the
	// version's number (1 for the first).
	Document    string `json:"document,omitempty"`
	DocumentKey string `json:"document_key,omitempty"`
	Version     int    `json:"version,omitempty"`
}

// JobList is the body of GET /v1/jobs: a page of jobs, newest first.
type JobList struct {
	Jobs []Job `json:"jobs"`
	// NextCursor is the cursor of the next page, "" on the last.
	NextCursor string `json:"next_cursor"`
}

// UploadResult is the body of the answer to POST /v1/uploads: the jobs
// of the files accepted (202), or of the earlier upload with the same
// idempotency key (200).
type UploadResult struct {
	Jobs []Job `json:"jobs"`
}

// Attempt is one try at delivering a job.
type Attempt struct {
	Number     int        `json:"number"`
	Worker     string     `json:"worker"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Outcome is RUNNING, SUCCESS, RETRY, FAILED, INTERRUPTED (handed back
	// at shutdown), ABANDONED (its worker died) or CANCELED.
	Outcome    string `json:"outcome"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
	// Uncertain, when set, says why this attempt repeated a creating step
	// whose earlier try may have landed unheard, on a target with no way
	// to ask (GET /v1/jobs?uncertain=true lists such jobs).
	Uncertain string `json:"uncertain,omitempty"`
	// DurationMS is how long the attempt took, once finished.
	DurationMS int64 `json:"duration_ms,omitempty"`
}

// AttemptList is the body of GET /v1/jobs/{id}/attempts, oldest first.
type AttemptList struct {
	Attempts []Attempt `json:"attempts"`
}

// RequeueFilter selects the FAILED jobs to put back in the queue. Empty
// fields match every job.
type RequeueFilter struct {
	Target string `json:"target,omitempty"`
	Batch  string `json:"batch,omitempty"`
	// Error matches jobs whose last error contains it, ignoring case.
	Error string `json:"error,omitempty"`
}

// Empty reports whether f matches every FAILED job.
func (f RequeueFilter) Empty() bool { return f.Target == "" && f.Batch == "" && f.Error == "" }

// RequeueRequest is the body of POST /v1/jobs/retry. An empty filter is
// refused unless All is true, so that nobody re-queues every failure by
// leaving out a field.
type RequeueRequest struct {
	RequeueFilter
	All bool `json:"all,omitempty"`
}

// BatchRetryRequest is the body of POST /v1/batches/{name}/retry.
type BatchRetryRequest struct {
	// Error, when set, re-queues only the FAILED jobs whose last error
	// contains it, ignoring case.
	Error string `json:"error,omitempty"`
	// ErrorGroup, when set, re-queues only the FAILED jobs of that failure
	// group (GET /v1/batches/{name}/failures), exactly.
	ErrorGroup *string `json:"error_group,omitempty"`
}

// RequeueResult is the answer of the re-queue routes.
type RequeueResult struct {
	Requeued int `json:"requeued"`
}
