// Package worker consumes jobs from the queue and delivers each stored file
// to its target, recording every attempt in Postgres.
//
// For each message the worker claims the job in Postgres (a message for a
// job that is final, not yet due, or running elsewhere is simply acked: the
// database, not the queue, decides what runs), streams the object from
// storage through the target's connector, and records the outcome. While a
// delivery runs, a heartbeat renews both the Postgres lease and the JetStream
// ack deadline, so a long upload never loses its message. A retryable
// failure schedules the next attempt in Postgres and acks the message, so
// waiting never holds a worker slot; the sweeper publishes the job again
// when its time comes.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/targets"
)

// Defaults of Config.
const (
	LeaseDefault         = 30 * time.Second
	ShutdownGraceDefault = 30 * time.Second
	fetchWait            = 5 * time.Second
)

// JobStore is what the worker needs of the job store.
type JobStore interface {
	Claim(ctx context.Context, id, owner string, lease time.Duration) (jobs.Job, error)
	ExtendLease(ctx context.Context, id, owner string, lease time.Duration) error
	SaveCheckpoint(ctx context.Context, id, owner string, cp map[string]string) error
	Finish(ctx context.Context, id, owner string, f jobs.Finish) (jobs.Job, error)
}

// ObjectStore is what the worker needs of object storage.
type ObjectStore interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Queue is what the worker needs of the queue.
type Queue interface {
	Consumer(ctx context.Context, target string, maxInFlight int) (jetstream.Consumer, error)
	AckWait() time.Duration
}

// Config configures a Worker.
type Config struct {
	// ID names this worker process in attempts and logs; default
	// hostname-pid.
	ID string
	// Lease is how long a claim lasts without a heartbeat.
	Lease time.Duration
	// ShutdownGrace is how long in-flight deliveries may run on after
	// Run's context is canceled before they are interrupted and handed
	// back to the queue.
	ShutdownGrace time.Duration
	// Rand returns a float in [0,1) for backoff jitter; nil uses
	// math/rand.
	Rand func() float64
	// Now returns the current time; nil uses time.Now.
	Now func() time.Time
	// States shares each target's state (paused for refused
	// credentials, circuit open) with every process; nil keeps it in
	// this process.
	States StateStore
	// Limits takes slots of the caps shared across target entries and
	// processes (limit_group, max_in_flight, a Workfront instance's ten
	// requests); nil leaves only each target's concurrency per process.
	Limits Limiter
	// Rates, when set, paces the targets that have a `rate` (rate.go).
	Rates Rates
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Lease == 0 {
		c.Lease = LeaseDefault
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = ShutdownGraceDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Worker delivers jobs of a set of targets.
type Worker struct {
	cfg     Config
	jobs    JobStore
	objects ObjectStore
	queue   Queue
	targets targets.Set
	log     *slog.Logger

	breakers map[string]*Breaker
	health   map[string]*health
	states   StateStore
	limits   Limiter
	pacer    *pacer
}

// New returns a worker.
func New(cfg Config, js JobStore, os ObjectStore, q Queue, ts targets.Set, log *slog.Logger) *Worker {
	w := &Worker{cfg: cfg.WithDefaults(), jobs: js, objects: os, queue: q, targets: ts, log: log,
		breakers: map[string]*Breaker{}, health: map[string]*health{}, states: cfg.States, limits: cfg.Limits}
	for name := range ts {
		w.breakers[name] = NewBreaker(BreakerConfig{}, w.cfg.Now)
		w.health[name] = &health{state: "ok"}
	}
	if cfg.Rates != nil {
		w.pacer = newPacer(cfg.Rates, log)
	}
	initSeries(ts.Names())
	return w
}

// Run consumes and delivers until ctx is canceled, then stops taking work,
// lets in-flight deliveries finish for up to the shutdown grace, interrupts
// the rest and hands them back to the queue. It returns when every delivery
// has ended and been recorded.
func (w *Worker) Run(ctx context.Context) error {
	// Deliveries run on their own context, canceled only after the grace.
	work, interrupt := context.WithCancel(context.WithoutCancel(ctx))
	defer interrupt()
	var inflight, loops, renew sync.WaitGroup
	if w.limits != nil {
		// Slots are renewed until the last delivery has ended.
		rctx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
		renew.Go(func() { w.limits.Run(rctx) })
		defer renew.Wait()
		defer stopRenew()
	}
	for _, name := range w.targets.Names() {
		t := w.targets[name]
		loops.Go(func() { w.consume(ctx, work, t, &inflight) })
	}
	w.log.Info("worker started", "worker", w.cfg.ID, "targets", w.targets.Names())
	<-ctx.Done()
	loops.Wait()
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace over: interrupting deliveries and handing them back", "grace", w.cfg.ShutdownGrace)
		interrupt()
		<-done
	}
	w.log.Info("worker stopped", "worker", w.cfg.ID)
	return nil
}

// consume fetches target t's messages while it has free delivery slots.
func (w *Worker) consume(ctx, work context.Context, t *targets.Target, inflight *sync.WaitGroup) {
	log := w.log.With("target", t.Name)
	maxInFlight := 0
	if sl, ok := t.Deliverer.(targets.SharedLimiter); ok {
		_, maxInFlight = sl.SharedLimit()
	}
	// acquire gets the target's consumer, creating it (and the stream) if
	// missing: at start, and again whenever fetching says it is gone (NATS
	// lost its store, or the consumer was deleted).
	acquire := func() jetstream.Consumer {
		for ctx.Err() == nil {
			cons, err := w.queue.Consumer(ctx, t.Name, maxInFlight)
			if err == nil {
				return cons
			}
			log.Warn("queue not ready, retrying", "err", err)
			sleep(ctx, 2*time.Second)
		}
		return nil
	}
	cons := acquire()
	lastMsg := time.Now()
	slots := make(chan struct{}, t.Concurrency)
	lims := limitsOf(t)
	for ctx.Err() == nil {
		// Wait for one free slot, then take every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
		for n < t.Concurrency {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		probe := w.waitWhilePaused(ctx, t, log)
		if w.waitForCircuit(ctx, t.Name, log) || probe {
			// One probe delivery: hand back the other slots.
			for ; n > 1; n-- {
				<-slots
			}
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				inflight.Go(func() {
					defer func() { <-slots }()
					// A slot of the shared caps is taken per message, once
					// it is here: a slot is never held waiting for work.
					permit, ok := w.permit(ctx, lims, msg, log)
					if !ok {
						return
					}
					defer w.release(permit)
					w.handle(work, t, msg, probe)
				})
			}
			err = batch.Error()
		}
		cancel()
		for range n - got {
			<-slots
		}
		if got > 0 {
			lastMsg = time.Now()
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			log.Warn("fetch failed, getting the consumer again", "err", err)
			sleep(ctx, time.Second)
			cons = acquire()
			continue
		}
		if ctx.Err() == nil && time.Since(lastMsg) > consumerCheckEvery {
			// Quiet for a while: make sure the consumer still exists, since a
			// fetch from a lost one may just come back empty.
			lastMsg = time.Now()
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := cons.Info(ictx)
			cancel()
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				log.Warn("consumer lost, creating it again", "err", err)
				cons = acquire()
			}
		}
	}
}

// consumerCheckEvery is how long a consumer may deliver nothing before the
// worker checks that it still exists.
const consumerCheckEvery = 10 * time.Second

// waitForCircuit waits while target's circuit is open, checking every
// second so that a success of a delivery still in flight closes it at once.
// It reports whether the next delivery is a lone probe.
func (w *Worker) waitForCircuit(ctx context.Context, target string, log *slog.Logger) bool {
	logged := false
	for ctx.Err() == nil {
		wait, probe := w.breakers[target].Admit()
		if !probe {
			return false
		}
		if wait == 0 {
			return true
		}
		if !logged {
			log.Info("circuit open: pausing deliveries", "for", wait.Round(time.Millisecond))
			logged = true
		}
		sleep(ctx, min(wait, time.Second))
	}
	return false
}

// release gives a permit's slots back.
func (w *Worker) release(p *limits.Permit) {
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.limits.Release(ctx, p)
	}
}

// handle runs one message: claim, deliver, record, ack. probe says the
// delivery probes a target paused for refused credentials.
func (w *Worker) handle(ctx context.Context, t *targets.Target, msg jetstream.Msg, probe bool) {
	_, id, ok := queue.ParseSubject(msg.Subject())
	if !ok {
		w.log.Error("message with a malformed subject", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	owner := w.cfg.ID + "/" + randomToken()
	job, err := w.jobs.Claim(ctx, id, owner, w.cfg.Lease)
	var ce *jobs.ClaimError
	switch {
	case errors.As(err, &ce):
		// Final, running elsewhere or not due: the sweeper publishes it
		// again if it ever needs to run. The ack must have removed the
		// message before that publish, or the stream (one message per job)
		// would refuse it as a duplicate of this one: ack synchronously.
		w.ackNow(ctx, msg, id)
		return
	case errors.Is(err, jobs.ErrNotFound):
		_ = msg.Term()
		return
	case err != nil:
		w.log.Warn("claim failed, message will be redelivered", "job", id, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	log := w.log.With("job", job.ID, "target", t.Name, "attempt", job.Attempts)
	started := w.cfg.Now()
	res, info, derr := w.attempt(ctx, t, job, owner, msg)
	fin := w.decide(ctx, t, job, res, derr, info)
	switch {
	case fin.credentials:
		w.credentialsRefused(ctx, t, derr, probe, log)
	case probe || w.stateOf(ctx, t.Name) == targetstate.PausedCredentials:
		// The credentials worked (whatever became of the file).
		w.resumed(ctx, t, log)
	}
	if info.uncertain != "" {
		uncertainTotal.WithLabelValues(t.Name).Inc()
		fin.Uncertain = info.uncertain
		log.Warn("uncertain redelivery: the target may hold this file twice", "why", info.uncertain)
	}
	w.breakers[t.Name].Record(derr == nil || !fin.breaks)
	if open := w.breakers[t.Name].Open(); derr != nil || !open {
		reason := ""
		if derr != nil {
			reason = derr.Error()
		}
		w.recordCircuit(ctx, t, open, reason, log)
	}
	observe(t.Name, fin.Outcome, w.cfg.Now().Sub(started), w.cfg.Now().Sub(job.CreatedAt))
	if fin.Status == jobs.StatusRetrying {
		// A retry is published again by the sweeper as soon as its wait
		// is over, which can be milliseconds after Finish commits. Remove
		// this message first: an ack still in flight would make that
		// publish a refused duplicate and strand the job RETRYING with no
		// message. Dying between the two leaves the job RUNNING until its
		// lease expires, and the sweeper recovers it.
		w.ackNow(ctx, msg, id)
	}
	if _, err := w.finish(job.ID, owner, fin.Finish); err != nil {
		log.Error("could not record the attempt; the lease will expire and the job run again", "err", err)
		_ = msg.Nak()
		return
	}
	switch fin.Status {
	case jobs.StatusQueued:
		_ = msg.Nak()
	case jobs.StatusRetrying: // acked above
	default:
		_ = msg.Ack()
	}
	attrs := []any{"outcome", fin.Outcome, "duration", w.cfg.Now().Sub(started).Round(time.Millisecond)}
	switch {
	case fin.Status == jobs.StatusSuccess:
		log.Info("delivered", append(attrs, "remote_id", fin.RemoteID)...)
	case fin.credentials:
		// Said once per target, when it was paused; not once per job.
		log.Debug("attempt refused: target paused for its credentials, job waits", append(attrs, "err", fin.Error)...)
	case fin.Status == jobs.StatusRetrying:
		log.Warn("attempt failed, will retry", append(attrs, "err", fin.Error, "next_attempt_at", fin.NextAttemptAt)...)
	case fin.Status == jobs.StatusFailed:
		log.Error("delivery failed for good", append(attrs, "err", fin.Error)...)
	default:
		log.Info("delivery interrupted by shutdown, handed back", attrs...)
	}
}

// attemptInfo is what the worker learnt of an attempt besides its result.
type attemptInfo struct {
	// stored is the stored file's problem (missing, corrupted), or "".
	stored string
	// uncertain is the connector's Delivery.Uncertain.
	uncertain string
}

// attempt runs the connector with a heartbeat that renews the lease and the
// message's ack deadline.
func (w *Worker) attempt(ctx context.Context, t *targets.Target, job jobs.Job, owner string, msg jetstream.Msg) (targets.Result, attemptInfo, error) {
	// The heartbeat runs while the attempt waits for the target's rate
	// too; the attempt's timeout starts when the request may go.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	stop := w.heartbeat(hctx, hcancel, job.ID, owner, msg)
	defer stop()
	if err := w.pacer.wait(hctx, t); err != nil {
		return targets.Result{}, attemptInfo{}, err
	}
	actx, cancel := context.WithTimeoutCause(hctx, t.Timeout, fmt.Errorf("attempt timed out after %s", t.Timeout))
	defer cancel()

	stored := &storedFile{objects: w.objects, key: job.ObjectKey, size: job.Size, sha256: job.SHA256}
	d := targets.NewDelivery(
		stored.open,
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
	if job.Checkpoint != nil {
		d.Checkpoint = job.Checkpoint
	}
	res, err := t.Deliverer.Deliver(actx, d)
	w.pacer.observe(t, err)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		// The attempt's own deadline or a lost lease: say which.
		err = fmt.Errorf("%w (%w)", context.Cause(actx), err)
	}
	info := attemptInfo{stored: stored.failure(), uncertain: d.Uncertain()}
	if err == nil && info.stored != "" {
		// A connector that swallowed the read error must not make a
		// SUCCESS of a file that did not go out whole.
		err = errors.New(info.stored)
	}
	return res, info, err
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

// decision is a Finish plus what the circuit breaker should make of it.
type decision struct {
	jobs.Finish
	breaks      bool // the failure says the target is unwell (not the file)
	credentials bool // the target refused the credentials: pause it
}

// decide turns an attempt's result into the job's next state.
func (w *Worker) decide(ctx context.Context, t *targets.Target, job jobs.Job, res targets.Result, err error, info attemptInfo) decision {
	now := w.cfg.Now()
	if err == nil {
		return decision{Finish: jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess,
			HTTPStatus: res.StatusCode, RemoteID: res.RemoteID}}
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
		return decision{Finish: f, breaks: true}
	}
	wait := t.Backoff.Delay(job.Attempts, w.cfg.Rand)
	if te.RetryAfter > wait {
		wait = te.RetryAfter
	}
	if limit := t.MaxRetryAfter; limit > 0 && wait > limit {
		wait = limit // a target may not park a job for centuries
	}
	f.Status, f.Outcome, f.NextAttemptAt = jobs.StatusRetrying, jobs.OutcomeRetry, now.Add(wait)
	return decision{Finish: f, breaks: true}
}

// finish records the attempt, retrying for a while if Postgres is briefly
// unreachable: losing the record of a successful delivery would make the
// file be delivered again.
func (w *Worker) finish(id, owner string, f jobs.Finish) (jobs.Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Lease)
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

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func randomToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
