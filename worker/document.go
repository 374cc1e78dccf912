package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
)

// Versions of documents (issue 21): a job that is a version of a document
// hands its connector the document (Delivery.Document) with what was
// reported of it at the target before; a delete has no file; a connector
// that cannot version refuses versions after the first. Order is the
// store's: Claim refuses a version while an older one of its document runs
// (ClaimError.Blocked), and the worker hands its message back for a short
// while without an attempt.

// versionWait is how long a version's message waits before it comes back
// when an older version of its document runs.
const versionWait = 500 * time.Millisecond

// errNoFile is what a connector gets if it opens the file of a delete.
var errNoFile = targets.Permanent(errors.New("a delete of a document has no file"))

// noFile is the open of a delete's Delivery.
func noFile(context.Context) (io.ReadCloser, error) { return nil, errNoFile }

// document returns the document job is a version of, for its Delivery,
// or nil for a job without one. It returns a permanent error for a
// version the target's connector cannot deliver: a delete where it has no
// delete, a version after the first where it refuses versions.
func (w *Worker) document(ctx context.Context, t *targets.Target, job jobs.Job) (*targets.Document, error) {
	if job.DocumentID == "" {
		return nil, nil
	}
	if err := refusal(t, job); err != nil {
		return nil, err
	}
	remote, err := w.jobs.DocumentRemote(ctx, job.DocumentID)
	if err != nil {
		return nil, fmt.Errorf("read the document of version %d: %w", job.Version, err)
	}
	return &targets.Document{ID: job.DocumentID, Key: job.DocumentKey, Version: job.Version,
		Delete: job.Op == jobs.OpDelete, Remote: remote}, nil
}

// refusal is why t's connector cannot deliver job, a version of a
// document, or nil. A connector without a Versioner delivers each version
// as a new file, and deletes nothing; so does one that neither updates nor
// appends and gives no Refusal (the http kind's versions: none, whatever
// it answers): only a Refusal refuses a version after the first.
func refusal(t *targets.Target, job jobs.Job) error {
	var vs targets.VersionSupport
	if v, ok := t.Deliverer.(targets.Versioner); ok {
		vs = v.Versions()
	}
	switch {
	case job.Op == jobs.OpDelete && !vs.Delete:
		return targets.Permanent(fmt.Errorf("target %s (kind %s) cannot delete documents", t.Name, t.Kind))
	case job.Op != jobs.OpDelete && job.Version > 1 && !vs.Update && !vs.Append && vs.Refusal != "":
		return targets.Permanent(errors.New(vs.Refusal))
	}
	return nil
}
