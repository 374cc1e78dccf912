package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
)

// decision is a Finish plus what the circuit breaker should make of it.
type decision struct {
	jobs.Finish
	breaks      bool // the failure says the target is unwell (not the file)
	credentials bool // the target refused the credentials: pause it
	storage     bool // object storage did not answer: pause every delivery
	held        bool // nothing was sent: the attempt says nothing of health
}

// decide turns an attempt's result into the job's next state.
func (w *Worker) decide(ctx context.Context, t *targets.Target, job jobs.Job, res targets.Result, err error, info attemptInfo) decision {
	now := w.cfg.Now()
	if err == nil {
		return decision{Finish: jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess,
			HTTPStatus: res.StatusCode, RemoteID: res.RemoteID, Remote: res.Remote}}
	}
	if ctx.Err() != nil {
		// Shutdown interrupted the attempt: hand the job back; this
		// attempt does not count.
		return decision{Finish: jobs.Finish{Status: jobs.StatusQueued, Outcome: jobs.OutcomeInterrupted,
			Error: "interrupted by worker shutdown", NextAttemptAt: now}}
	}
	te := targets.Classify(err)
	f := jobs.Finish{Error: err.Error(), HTTPStatus: te.StatusCode}
	if f.HTTPStatus == 0 {
		f.HTTPStatus = res.StatusCode
	}
	switch {
	case info.stored != "":
		// The job's own bytes are gone or damaged: no retry can help,
		// and the target is not to blame.
		f.Status, f.Outcome, f.Error = jobs.StatusFailed, jobs.OutcomeFailed, info.stored
		return decision{Finish: f}
	case info.held != "":
		// Nothing was sent: the job waits with the others, uncounted.
		f.Status, f.Outcome, f.NextAttemptAt, f.Uncount = jobs.StatusRetrying, jobs.OutcomeRetry, now.Add(info.holdFor), true
		f.Error = "not sent, " + info.held
		return decision{Finish: f, held: true}
	case info.storageDown != nil && info.stored == "":
		// Ferry's own storage did not answer: the attempt does not count,
		// the target is not to blame, and the job waits until storage
		// answers again.
		f.Status, f.Outcome, f.NextAttemptAt, f.Uncount = jobs.StatusRetrying, jobs.OutcomeRetry, now.Add(storageRetryDelay), true
		f.Error = "delivery paused, object storage unreachable: " + f.Error
		return decision{Finish: f, storage: true}
	case te.Credentials:
		// The target's fault, not the job's: the attempt does not count,
		// and the job waits until the target's credentials work again.
		f.Status, f.Outcome, f.NextAttemptAt, f.Uncount = jobs.StatusRetrying, jobs.OutcomeRetry, now, true
		f.Error = "target paused, credentials refused: " + f.Error
		return decision{Finish: f, credentials: true}
	case te.Permanent:
		f.Status, f.Outcome = jobs.StatusFailed, jobs.OutcomeFailed
		return decision{Finish: f}
	case job.Attempts >= job.MaxAttempts:
		f.Status, f.Outcome = jobs.StatusFailed, jobs.OutcomeFailed
		f.Error = fmt.Sprintf("gave up after %d attempts: %s", job.Attempts, f.Error)
		return decision{Finish: f, breaks: unwell(te)}
	}
	wait := t.Backoff.Delay(job.Attempts, w.cfg.Rand)
	if te.RetryAfter > wait {
		wait = te.RetryAfter
	}
	if limit := t.MaxRetryAfter; limit > 0 && wait > limit {
		wait = limit // a target may not park a job for centuries
	}
	f.Status, f.Outcome, f.NextAttemptAt = jobs.StatusRetrying, jobs.OutcomeRetry, now.Add(wait)
	return decision{Finish: f, breaks: unwell(te)}
}

// unwell reports whether a retryable failure says the target is unwell (no
// answer, a 5xx, a 408 or 429) rather than refusing one file (another 4xx):
// only those count towards opening its circuit.
func unwell(te *targets.Error) bool {
	c := te.StatusCode
	return c == 0 || c >= http.StatusInternalServerError || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests
}

// finish records the attempt, retrying for a while if Postgres is briefly
// unreachable: losing the record of a successful delivery would make the
// file be delivered again.
func (w *Worker) finish(ctx context.Context, id, owner string, f jobs.Finish) (jobs.Job, error) {
	// Recorded even when the worker is stopping: ctx gives its trace, not
	// its end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Lease)
	defer cancel()
	for {
		job, err := w.jobs.Finish(ctx, id, owner, f)
		if err == nil || errors.Is(err, jobs.ErrLeaseLost) || ctx.Err() != nil {
			return job, err
		}
		sleep(ctx, time.Second)
	}
}

// ackNow acks msg and waits for the server to confirm it, for a short
// while; if it cannot, the message comes back after the ack wait and the
// claim decides again.
func (w *Worker) ackNow(ctx context.Context, msg jetstream.Msg, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		w.log.Warn("ack not confirmed; the message will come back", "job", id, "err", err)
	}
}
