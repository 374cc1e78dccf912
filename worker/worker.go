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
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/jobs"
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
	DocumentRemote(ctx context.Context, id string) (map[string]string, error)
}

// ObjectStore is what the worker needs of object storage: Open, and Ping
// to probe it while it does not answer (storage.go).
type ObjectStore interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Ping(ctx context.Context) error
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
	// Breaker is the circuit breaker policy of every target (breaker.go);
	// zero fields take the defaults.
	Breaker BreakerConfig
	// StorageProbe is the first wait before probing object storage that
	// stopped answering; it doubles up to StorageProbeMax.
	StorageProbe    time.Duration
	StorageProbeMax time.Duration
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
	if c.StorageProbe == 0 {
		c.StorageProbe = StorageProbeDefault
	}
	if c.StorageProbeMax == 0 {
		c.StorageProbeMax = max(StorageProbeMaxDefault, c.StorageProbe)
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
	storage  *storageHealth
}

// New returns a worker.
func New(cfg Config, js JobStore, objects ObjectStore, q Queue, ts targets.Set, log *slog.Logger) *Worker {
	w := &Worker{cfg: cfg.WithDefaults(), jobs: js, objects: objects, queue: q, targets: ts, log: log,
		breakers: map[string]*Breaker{}, health: map[string]*health{}, states: cfg.States, limits: cfg.Limits,
		storage: newStorageHealth()}
	for name := range ts {
		w.breakers[name] = NewBreaker(w.cfg.Breaker, w.cfg.Now)
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
	loops.Go(func() { w.probeStorage(ctx) })
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
