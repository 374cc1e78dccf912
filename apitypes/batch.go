package apitypes

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxBatchName is the longest batch name, in bytes.
const MaxBatchName = 200

// CheckBatchName returns why name cannot name a batch, or nil. Names go in
// URL paths, so they hold no slash; nor control characters.
func CheckBatchName(name string) error {
	switch {
	case name == "":
		return errors.New("batch name is empty")
	case len(name) > MaxBatchName:
		return fmt.Errorf("batch name is longer than %d bytes", MaxBatchName)
	case !utf8.ValidString(name):
		return errors.New("batch name is not valid UTF-8")
	case strings.ContainsRune(name, '/'):
		return errors.New("batch name contains a slash")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("batch name contains a control character")
		}
	}
	return nil
}

// Batch is a batch object: a named set of uploads with a default target
// and parameters. It is the body of POST /v1/batches and of its answer.
type Batch struct {
	Name string `json:"name"`
	// Tenant owns the batch: the key's. A client may leave it out, or
	// name its own key's tenant.
	Tenant    string            `json:"tenant,omitempty"`
	Target    string            `json:"target"`
	Params    map[string]string `json:"params"`
	CreatedAt time.Time         `json:"created_at"`
	// URL is the batch's path in the API (answers only).
	URL string `json:"url,omitempty"`
}

// Count is a number of jobs and their bytes.
type Count struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// BatchSummary is where a batch's jobs stand: the body of GET
// /v1/batches/{name}.
type BatchSummary struct {
	Name string `json:"name"`
	// Tenant owns the batch.
	Tenant string `json:"tenant"`
	// Target and Params are the batch object's; empty for a label.
	Target string            `json:"target,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// ByStatus has every status, zero or not.
	ByStatus map[Status]Count `json:"by_status"`
	Total    Count            `json:"total"`
	// Pending are the jobs not yet final (QUEUED, RUNNING, RETRYING).
	Pending Count `json:"pending"`
	// Final are the jobs SUCCESS, FAILED, CANCELED or SUPERSEDED.
	Final Count `json:"final"`
	// StartedAt is when the batch object was created or, for a label, its
	// first job was; UpdatedAt is the last change of any of its jobs.
	StartedAt *time.Time `json:"started_at"`
	UpdatedAt *time.Time `json:"updated_at"`
	// FilesPerSecond and BytesPerSecond are how fast jobs became final
	// over the last few minutes.
	FilesPerSecond float64 `json:"files_per_second"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	// ETASeconds estimates the time until every job is final at that
	// rate; nil when nothing is pending or nothing finished lately.
	ETASeconds *float64 `json:"eta_seconds"`
}

// Done reports whether every job of the batch is final.
func (b BatchSummary) Done() bool { return b.Pending.Files == 0 }

// BatchPage is the body of GET /v1/batches: a page of summaries by name.
type BatchPage struct {
	Batches []BatchSummary `json:"batches"`
	// NextCursor is the name to pass as cursor for the next page, "" on
	// the last.
	NextCursor string `json:"next_cursor"`
}

// ReportRow is one file of a batch report (GET
// /v1/batches/{name}/report?format=json; the CSV has the same columns).
type ReportRow struct {
	// Path is the path the client gave for the file; the file name when it
	// gave none.
	Path       string     `json:"path"`
	JobID      string     `json:"job_id"`
	Status     Status     `json:"status"`
	Attempts   int        `json:"attempts"`
	RemoteID   string     `json:"remote_id"`
	SHA256     string     `json:"sha256"`
	Size       int64      `json:"size"`
	LastError  string     `json:"last_error"`
	FinishedAt *time.Time `json:"finished_at"`
}
