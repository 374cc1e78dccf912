package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
)

// attemptInfo is what the worker learnt of an attempt besides its result.
type attemptInfo struct {
	// stored is the stored file's problem (missing, corrupted), or "".
	stored string
	// storageDown is object storage not answering a read of the file.
	storageDown error
	// uncertain is the connector's Delivery.Uncertain.
	uncertain string
	// held says why nothing was sent: the target or storage was paused
	// between the fetch of the message and the attempt, or a probe of an
	// open circuit leaves a fresh job for a retried one; holdFor is how
	// long the job waits.
	held    string
	holdFor time.Duration
}

// attempt runs the connector with a heartbeat that renews the lease and the
// message's ack deadline, unless the delivery is to be held (holdReason),
// before or after waiting for the target's rate. adm says whether it probes
// a paused target or an open circuit.
func (w *Worker) attempt(ctx context.Context, t *targets.Target, job jobs.Job, owner string, msg jetstream.Msg, adm admission) (targets.Result, attemptInfo, error) {
	// The heartbeat runs while the attempt waits for the target's rate
	// too; the attempt's timeout starts when the request may go.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	stop := w.heartbeat(hctx, hcancel, job.ID, owner, msg)
	defer stop()
	if why, wait := w.holdReason(ctx, t, job, adm); why != "" {
		return targets.Result{}, attemptInfo{held: why, holdFor: wait}, errors.New(why)
	}
	if err := w.pacer.wait(hctx, t); err != nil {
		return targets.Result{}, attemptInfo{}, err
	}
	if why, wait := w.holdReason(ctx, t, job, adm); why != "" {
		return targets.Result{}, attemptInfo{held: why, holdFor: wait}, errors.New(why)
	}
	doc, err := w.document(hctx, t, job)
	if err != nil {
		return targets.Result{}, attemptInfo{}, err
	}
	actx, cancel := context.WithTimeoutCause(hctx, t.Timeout, fmt.Errorf("attempt timed out after %s", t.Timeout))
	defer cancel()

	stored := &storedFile{objects: w.objects, key: job.ObjectKey, size: job.Size, sha256: job.SHA256}
	open := stored.open
	if doc != nil && doc.Delete {
		open = noFile
	}
	d := targets.NewDelivery(
		open,
		func(ctx context.Context, cp targets.Checkpoint) error {
			return w.jobs.SaveCheckpoint(ctx, job.ID, owner, cp)
		},
	)
	d.JobID = job.ID
	d.Filename = job.Filename
	d.ContentType = job.ContentType
	d.Size = job.Size
	d.SHA256 = job.SHA256
	d.Params = job.Params
	d.Document = doc
	if job.Checkpoint != nil {
		d.Checkpoint = job.Checkpoint
	}
	res, err := t.Deliverer.Deliver(d.TraceSteps(actx), d)
	d.EndSteps(err != nil)
	w.pacer.observe(t, err)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		// The attempt's own deadline or a lost lease: say which.
		err = fmt.Errorf("%w (%w)", context.Cause(actx), err)
	}
	info := attemptInfo{stored: stored.failure(), storageDown: stored.storageDown(), uncertain: d.Uncertain()}
	switch {
	case err != nil:
	case info.stored != "":
		// A connector that swallowed the read error must not make a
		// SUCCESS of a file that did not go out whole.
		err = errors.New(info.stored)
	case info.storageDown != nil:
		err = info.storageDown
	}
	return res, info, err
}

// holdReason says why a delivery must not go out now, and for how long
// its job waits, "" when it may go. Its message can have been fetched (a
// fetch waits for messages) after the gate let the fetch through but before
// a refusal paused the target, or before object storage stopped answering:
// the job of the very delivery refused would otherwise be sent again within
// a second. A probe of an open circuit leaves its job for a job on a later
// attempt, when one is due soon.
func (w *Worker) holdReason(ctx context.Context, t *targets.Target, job jobs.Job, adm admission) (string, time.Duration) {
	switch {
	case w.storage.err() != nil:
		return "object storage unreachable", 0
	case !adm.credentialProbe && w.stateOf(ctx, t.Name) == targetstate.PausedCredentials:
		return "target paused, credentials refused", 0
	case adm.circuitProbe:
		if wait, ok := w.breakers[t.Name].PreferRetry(job.Attempts); ok {
			return "circuit open, probing with a job retried more first", wait
		}
	}
	return "", 0
}

// heartbeat renews the lease and the ack deadline until stopped. When the
// lease is lost (another worker recovered the job), it cancels the attempt.
func (w *Worker) heartbeat(ctx context.Context, cancel context.CancelFunc, id, owner string, msg jetstream.Msg) (stop func()) {
	every := min(w.cfg.Lease, w.queue.AckWait()) / 3
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = msg.InProgress()
			err := w.jobs.ExtendLease(ctx, id, owner, w.cfg.Lease)
			if errors.Is(err, jobs.ErrLeaseLost) {
				w.log.Warn("lease lost: abandoning the attempt", "job", id)
				cancel()
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
