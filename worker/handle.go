package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/targets"
)

// handle runs one message: claim, attempt, decide, record the target's
// health, settle (record the attempt and ack). adm says whether the
// delivery probes a paused target or an open circuit.
func (w *Worker) handle(ctx context.Context, t *targets.Target, msg jetstream.Msg, adm admission) {
	ctx, span := startDelivery(ctx, t, msg)
	cctx, claimSpan := tracer().Start(ctx, "claim")
	job, owner, ok := w.claim(cctx, msg)
	endClaim(span, claimSpan, ok)
	if !ok {
		w.returnProbe(t, adm)
		return
	}
	w.breakers[t.Name].Claimed(job.ID)
	log := w.log.With("job", job.ID, "target", t.Name, "attempt", job.Attempts)
	started := w.cfg.Now()
	res, info, err := w.attempt(ctx, t, job, owner, msg, adm)
	fin := w.decide(ctx, t, job, res, err, info)
	fin.Uncertain = info.uncertain
	w.recordHealth(ctx, t, job, fin, err, adm, log)
	observe(t.Name, fin.Outcome, w.cfg.Now().Sub(started), w.cfg.Now().Sub(job.CreatedAt))
	w.settle(ctx, msg, job.ID, owner, fin, started, log)
	endDelivery(span, job, fin)
}

// claim takes the message's job in Postgres. A job that is final, running
// elsewhere or not due is acked (the sweeper publishes it again if it ever
// needs to run); a job that is gone is terminated; a claim that failed is
// handed back for later. It reports false in each of those cases.
func (w *Worker) claim(ctx context.Context, msg jetstream.Msg) (jobs.Job, string, bool) {
	target, id, ok := queue.ParseSubject(msg.Subject())
	if !ok {
		w.log.Error("message with a malformed subject", "subject", msg.Subject())
		_ = msg.Term()
		return jobs.Job{}, "", false
	}
	owner := w.cfg.ID + "/" + randomToken()
	job, err := w.jobs.Claim(ctx, id, owner, w.cfg.Lease)
	var ce *jobs.ClaimError
	switch {
	case errors.As(err, &ce) && ce.Blocked:
		// An older version of its document runs: the message comes back
		// soon, and the claim counted no attempt (document.go).
		_ = msg.NakWithDelay(versionWait)
		return jobs.Job{}, "", false
	case errors.As(err, &ce):
		// The ack must have removed the message before the sweeper's
		// publish, or the stream (one message per job) would refuse it
		// as a duplicate of this one: ack synchronously.
		w.ackNow(ctx, msg, id)
		return jobs.Job{}, "", false
	case errors.Is(err, jobs.ErrNotFound):
		w.dropUnknown(target, msg, id)
		return jobs.Job{}, "", false
	case err != nil:
		w.log.Warn("claim failed, message will be redelivered", "job", id, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return jobs.Job{}, "", false
	}
	return job, owner, true
}

// recordHealth notes what the attempt says of the target (refused or
// working credentials, the circuit breaker and its shared state, an
// uncertain redelivery), or of object storage when it did not answer.
func (w *Worker) recordHealth(ctx context.Context, t *targets.Target, job jobs.Job, fin decision, err error, adm admission, log *slog.Logger) {
	switch {
	case fin.held:
		w.returnProbe(t, adm)
		return
	case fin.storage:
		// The attempt says nothing of the target.
		w.returnProbe(t, adm)
		w.storageDown(err, log)
		return
	}
	switch {
	case fin.credentials:
		w.credentialsRefused(ctx, t, err, adm.credentialProbe, log)
	case adm.credentialProbe || w.stateOf(ctx, t.Name) == targetstate.PausedCredentials:
		// The credentials worked (whatever became of the file).
		w.resumed(ctx, t, log)
	}
	if fin.Uncertain != "" {
		uncertainTotal.WithLabelValues(t.Name).Inc()
		log.Warn("uncertain redelivery: the target may hold this file twice", "why", fin.Uncertain)
	}
	br := w.breakers[t.Name]
	br.Record(err == nil || !fin.breaks, adm.circuitProbe)
	if fin.breaks && fin.Status == jobs.StatusRetrying {
		br.RetryScheduled(job.ID, fin.NextAttemptAt, job.Attempts+1)
	}
	if open := br.Open(); err != nil || !open {
		reason := ""
		if err != nil {
			reason = err.Error()
		}
		w.recordCircuit(ctx, t, open, reason, log)
	}
}

// returnProbe gives back the circuit's probe a delivery did not use.
func (w *Worker) returnProbe(t *targets.Target, adm admission) {
	if adm.circuitProbe {
		w.breakers[t.Name].ReturnProbe()
	}
}

// settle records the attempt and settles the message: acked once the job
// is final or waits for a retry, handed back when the job was.
func (w *Worker) settle(ctx context.Context, msg jetstream.Msg, id, owner string, fin decision, started time.Time, log *slog.Logger) {
	if fin.Status == jobs.StatusRetrying {
		// A retry is published again by the sweeper as soon as its wait
		// is over, which can be milliseconds after Finish commits. Remove
		// this message first: an ack still in flight would make that
		// publish a refused duplicate and strand the job RETRYING with no
		// message. Dying between the two leaves the job RUNNING until its
		// lease expires, and the sweeper recovers it.
		w.ackNow(ctx, msg, id)
	}
	fctx, span := tracer().Start(ctx, "finish")
	job, err := w.finish(fctx, id, owner, fin.Finish)
	if err != nil {
		failSpan(span, "attempt not recorded")
	}
	span.End()
	if err != nil {
		log.ErrorContext(ctx, "could not record the attempt; the lease will expire and the job run again", "err", err)
		_ = msg.Nak()
		return
	}
	if job.Status == jobs.StatusSuperseded {
		// A newer version of its document goes instead (acked above).
		supersededTotal.WithLabelValues(job.Target).Inc()
		log.InfoContext(ctx, "version superseded by a newer one of its document", "err", fin.Error)
		return
	}
	switch fin.Status {
	case jobs.StatusQueued:
		_ = msg.Nak()
	case jobs.StatusRetrying: // acked above
	default:
		_ = msg.Ack()
	}
	w.logOutcome(ctx, fin, w.cfg.Now().Sub(started), log)
}

// logOutcome says how the attempt ended (with its trace_id when traced).
func (w *Worker) logOutcome(ctx context.Context, fin decision, took time.Duration, log *slog.Logger) {
	attrs := []any{"outcome", fin.Outcome, "duration", took.Round(time.Millisecond)}
	switch {
	case fin.Status == jobs.StatusSuccess:
		log.InfoContext(ctx, "delivered", append(attrs, "remote_id", fin.RemoteID)...)
	case fin.credentials:
		// Said once per target, when it was paused; not once per job.
		log.DebugContext(ctx, "attempt refused: target paused for its credentials, job waits", append(attrs, "err", fin.Error)...)
	case fin.held || fin.storage:
		// Said once per process or target, when deliveries were paused.
		log.DebugContext(ctx, "object storage unreachable: job waits", append(attrs, "err", fin.Error)...)
	case fin.Status == jobs.StatusRetrying:
		log.WarnContext(ctx, "attempt failed, will retry", append(attrs, "err", fin.Error, "next_attempt_at", fin.NextAttemptAt)...)
	case fin.Status == jobs.StatusFailed:
		log.ErrorContext(ctx, "delivery failed for good", append(attrs, "err", fin.Error)...)
	default:
		log.InfoContext(ctx, "delivery interrupted by shutdown, handed back", attrs...)
	}
}
