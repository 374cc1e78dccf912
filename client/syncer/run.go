package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/source"
)

const (
	// pollEvery is how often Run asks ferry what became of accepted jobs.
	pollEvery = 5 * time.Second
	// goneRetry is how soon Run looks again at a source that is gone.
	goneRetry = 10 * time.Second
)

// Run keeps the target in step until ctx ends: a full pass first, then
// passes over the paths hinted (Touch), full rescans when asked (Rescan)
// and every Interval (jittered), and the pending ops sent with backoff
// while ferry is unreachable or busy; it never returns for a transient
// failure, nor for a source that is gone (it says so and looks again).
// When ctx ends, the uploads in flight finish and Run returns nil.
func (e *Engine) Run(ctx context.Context) error {
	e.running = true
	r := &runner{e: e, bo: newBackoff(), nextRescan: time.Now()}
	e.seed(ctx)
	for ctx.Err() == nil {
		if err := r.step(ctx); err != nil {
			return err
		}
		r.wait(ctx)
	}
	return nil
}

// runner is Run's state between steps.
type runner struct {
	e          *Engine
	bo         *backoff
	nextRescan time.Time
	retryAt    time.Time // zero when not backing off
	nextPoll   time.Time
	gone       bool
}

// step makes the pass due, sends what is pending unless backing off, and
// polls deliveries when due. Only a failure of the state is returned.
func (r *runner) step(ctx context.Context) error {
	e := r.e
	paths, reason := e.takeHints()
	now := time.Now()
	var err error
	switch {
	case reason != "" || !now.Before(r.nextRescan):
		if reason != "" {
			e.log.Info("full rescan", "reason", reason)
		}
		err = e.pass(ctx, scope{full: true})
		r.nextRescan = time.Now().Add(jitter(e.o.Interval, 0.1))
		e.c.setNextRescan(r.nextRescan)
	case len(paths) > 0:
		err = e.pass(ctx, scope{paths: paths})
	}
	if err = r.passDone(err); err != nil {
		return err
	}
	if ctx.Err() == nil && (r.retryAt.IsZero() || !time.Now().Before(r.retryAt)) {
		r.send(ctx)
	}
	if !time.Now().Before(r.nextPoll) {
		e.pollDeliveries(ctx)
		r.nextPoll = time.Now().Add(pollEvery)
	}
	return nil
}

// passDone handles a pass's error: a source gone is said once and looked
// at again soon; other failures of the source are logged and retried at
// the next rescan; a failure of the state ends Run.
func (r *runner) passDone(err error) error {
	e := r.e
	switch {
	case err == nil:
		if r.gone {
			r.gone = false
			e.log.Info("the source is back")
		}
		return nil
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, source.ErrGone):
		if !r.gone {
			r.gone = true
			e.log.Error("the source is gone; nothing is deleted; looking again", "err", err)
			e.emit(Event{Kind: EventGone, Message: err.Error()})
		}
		r.nextRescan = time.Now().Add(min(goneRetry, e.o.Interval))
		return nil
	case isStateError(err):
		return err
	default:
		e.log.Warn("pass failed; trying again at the next rescan", "err", err)
		r.nextRescan = time.Now().Add(min(goneRetry, e.o.Interval))
		return nil
	}
}

func isStateError(err error) bool {
	var se stateError
	return errors.As(err, &se)
}

// send sends the pending ops, backing off on transient failures.
func (r *runner) send(ctx context.Context) {
	e := r.e
	err := e.sendPending(ctx)
	switch {
	case errors.Is(err, errTransient):
		d := r.bo.next()
		r.retryAt = time.Now().Add(d)
		e.sayRetrying(d, err)
	case err != nil:
		e.log.Error("sending", "err", err)
		r.retryAt = time.Now().Add(r.bo.next())
	default:
		r.bo.reset()
		r.retryAt = time.Time{}
		e.sayResumed()
	}
}

// wait blocks until a hint, the next rescan, the end of a backoff, the
// next delivery poll, or the end of ctx.
func (r *runner) wait(ctx context.Context) {
	until := r.nextRescan
	if !r.retryAt.IsZero() && r.e.c.pending.Load() > 0 {
		until = minTime(until, r.retryAt)
	}
	if r.e.track.len() > 0 {
		until = minTime(until, r.nextPoll)
	}
	d := time.Until(until)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-r.e.wake:
	case <-t.C:
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
