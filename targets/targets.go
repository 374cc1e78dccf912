// Package targets defines how ferry talks to the systems it delivers files to.
//
// A connector (one package per system under targets/) implements Deliverer. It
// knows only bytes, parameters and credentials: never jobs, queues or HTTP
// handlers. The worker hands it a Delivery, which opens the stored bytes and
// carries the checkpoint of earlier attempts, so a multi-step protocol (init,
// upload, attach) resumes at the step that failed instead of starting over.
//
// Errors steer what happens next: a connector returns Permanent(err) for a
// refusal that no retry can fix, RetryAfter(err, d) when the system asked to be
// left alone for a while, and any other error is retried with the target's
// backoff.
package targets

import (
	"context"
	"io"
	"maps"
)

// Deliverer delivers one stored file to a target system.
type Deliverer interface {
	// Deliver makes one attempt at delivering d. It returns the target's id
	// for the delivered document, when the target gives one.
	Deliver(ctx context.Context, d *Delivery) (Result, error)
}

// ParamChecker is implemented by a Deliverer that can tell, before a file is
// accepted, that a job could never be delivered: a required parameter is
// missing or the file is over the target's size limit. The API answers such an
// upload with 422 and the returned error's text, which should name the
// parameter.
type ParamChecker interface {
	CheckParams(params map[string]string) error
}

// SizeLimiter is implemented by a Deliverer whose target refuses files above a
// size. The API refuses larger uploads for that target before storing them
// when the size is known, and the push client checks it in --dry-run.
type SizeLimiter interface {
	MaxFileBytes() int64
}

// SharedLimiter is implemented by a Deliverer whose remote system allows
// only so many concurrent requests per customer, whatever the number of
// target entries and ferry workers that talk to it (Workfront allows ten).
// Group names the remote system (its host, say): every target whose
// connector answers the same group shares one cap of deliveries in flight
// across all processes, unless the targets file sets limit_group. A
// connector that reports one must make at most one request at a time per
// delivery, so that the cap on deliveries is a cap on requests.
type SharedLimiter interface {
	SharedLimit() (group string, limit int)
}

// CredentialProber is implemented by a Deliverer that can check its
// credentials without delivering a file (a login, a token request). The
// worker calls it to probe a target paused for refused credentials; a
// connector without it is probed with one real delivery. It returns nil
// when the credentials work, an error for which IsCredentials is true when
// they are still refused, and any other error when it could not tell.
type CredentialProber interface {
	ProbeCredentials(ctx context.Context) error
}

// Delivery is what a connector gets for one attempt at one file.
type Delivery struct {
	// JobID is ferry's id for the job: stable across attempts, so it can
	// serve as an idempotency key where a target accepts one.
	JobID string
	// Filename is the name the user gave, UTF-8, never a path on disk.
	Filename string
	// ContentType is the media type given at upload, or
	// application/octet-stream.
	ContentType string
	// Size is the exact number of bytes Open returns.
	Size int64
	// SHA256 is the hex SHA-256 of the bytes.
	SHA256 string
	// Params are the per-job parameters (param.<name> at upload), already
	// merged with the target's defaults.
	Params map[string]string
	// Checkpoint holds what earlier attempts saved with Save. It is never
	// nil. Connectors must treat it as read-only and save a new one.
	Checkpoint Checkpoint
	// Document, when set, is the document this delivery is a version of
	// (document.go); nil for a job without a document.
	Document *Document

	open func(ctx context.Context) (io.ReadCloser, error)
	save func(ctx context.Context, cp Checkpoint) error

	uncertain string
	// steps are the spans of a traced attempt's steps (tracing.go).
	steps *steps
}

// MarkUncertain records that this attempt repeats a creating step whose
// earlier try may have landed unheard, on a target that gives no way to ask
// (a lost FileUpload answer, a lost uploadInit answer): the target may end
// up with a second document. reason says which step. The worker counts such
// attempts (ferry_uncertain_redeliveries_total) and marks them, so that an
// operator can find them (GET /v1/jobs?uncertain=true).
func (d *Delivery) MarkUncertain(reason string) { d.uncertain = reason }

// Uncertain returns the reason given to MarkUncertain, or "".
func (d *Delivery) Uncertain() string { return d.uncertain }

// NewDelivery returns a Delivery whose Open calls open and whose Save calls
// save. The worker builds one per attempt; tests build them directly.
func NewDelivery(open func(context.Context) (io.ReadCloser, error), save func(context.Context, Checkpoint) error) *Delivery {
	return &Delivery{open: open, save: save, Checkpoint: Checkpoint{}}
}

// Open returns the stored bytes from the start. A connector that needs the
// bytes twice (an upload repeated after its id expired) opens them again.
func (d *Delivery) Open(ctx context.Context) (io.ReadCloser, error) {
	return d.open(ctx)
}

// Save records that a step completed, merging kv into the checkpoint, and
// persists it before returning, so that a later attempt (in this process or
// another) resumes after that step. An empty value deletes the key.
func (d *Delivery) Save(ctx context.Context, kv Checkpoint) error {
	next := maps.Clone(d.Checkpoint)
	if next == nil {
		next = Checkpoint{}
	}
	for k, v := range kv {
		if v == "" {
			delete(next, k)
			continue
		}
		next[k] = v
	}
	if d.save != nil {
		if err := d.save(ctx, next); err != nil {
			return err
		}
	}
	d.Checkpoint = next
	if d.steps != nil {
		d.steps.saved(kv)
	}
	return nil
}

// Checkpoint is the progress of a multi-step delivery: step names or remote
// ids, as the connector chooses. It is stored with the job, shown by the
// status API, and must never hold a credential.
type Checkpoint map[string]string

// Result is the outcome of a successful delivery.
type Result struct {
	// RemoteID is the target system's id for the document, if any.
	RemoteID string
	// StatusCode is the HTTP status of the final response, if any.
	StatusCode int
	// Remote is what to keep of the document at the target for its next
	// version (its id, version id, ETag...), merged into what was kept; an
	// empty value removes a key. Only for a delivery with a Document.
	Remote map[string]string
}
