package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/targets"
)

// consumerCheckEvery is how long a consumer may deliver nothing before the
// worker checks that it still exists.
const consumerCheckEvery = 10 * time.Second

// feed is one target's consuming loop: its delivery slots, its consumer
// and what it needs to hand each message to a delivery.
type feed struct {
	w        *Worker
	t        *targets.Target
	log      *slog.Logger
	work     context.Context // the deliveries' context (canceled after the grace)
	inflight *sync.WaitGroup

	maxInFlight int
	lims        []limits.Limit
	slots       chan struct{}
	cons        jetstream.Consumer
	lastMsg     time.Time
}

// consume fetches target t's messages while it has free delivery slots:
// take slots, gate (paused, circuit open), fetch, ensure the consumer.
func (w *Worker) consume(ctx, work context.Context, t *targets.Target, inflight *sync.WaitGroup) {
	f := &feed{w: w, t: t, log: w.log.With("target", t.Name), work: work, inflight: inflight,
		lims: limitsOf(t), slots: make(chan struct{}, t.Concurrency)}
	if sl, ok := t.Deliverer.(targets.SharedLimiter); ok {
		_, f.maxInFlight = sl.SharedLimit()
	}
	f.cons = f.acquire(ctx)
	f.lastMsg = time.Now()
	for ctx.Err() == nil {
		n, ok := f.takeSlots(ctx)
		if !ok {
			return
		}
		n, adm := f.gate(ctx, n)
		err := f.fetch(ctx, n, adm)
		f.ensureConsumer(ctx, err)
	}
}

// takeSlots waits for one free delivery slot, then takes every other free
// one. It reports false when ctx ends first.
func (f *feed) takeSlots(ctx context.Context) (int, bool) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for n < cap(f.slots) {
		select {
		case f.slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

// putBack frees n slots taken but not used.
func (f *feed) putBack(n int) {
	for range n {
		<-f.slots
	}
}

// admission is how the gate let a delivery through.
type admission struct {
	credentialProbe bool // it probes a target paused for refused credentials
	circuitProbe    bool // it probes a half-open circuit (Breaker.TakeProbe)
}

// gate holds the deliveries while the target is paused for its
// credentials, object storage does not answer or the target's circuit is
// open, and says how many of the n slots taken may fetch: one for a
// credentials probe, the probes taken of a half-open circuit.
func (f *feed) gate(ctx context.Context, n int) (int, admission) {
	f.w.waitForStorage(ctx, f.log)
	var adm admission
	adm.credentialProbe = f.w.waitWhilePaused(ctx, f.t, f.log)
	k, circuit := f.w.waitForCircuit(ctx, f.t.Name, n, f.log)
	adm.circuitProbe = circuit
	if adm.credentialProbe && k > 1 {
		f.returnProbes(adm, k-1)
		k = 1
	}
	f.putBack(n - k)
	return k, adm
}

// returnProbes gives back n probes of a half-open circuit not used.
func (f *feed) returnProbes(adm admission, n int) {
	if adm.circuitProbe {
		for range n {
			f.w.breakers[f.t.Name].ReturnProbe()
		}
	}
}

// fetch asks for up to n messages and starts a delivery for each that
// comes, freeing the slots of those that do not.
func (f *feed) fetch(ctx context.Context, n int, adm admission) error {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	got := 0
	batch, err := f.cons.Fetch(n, jetstream.FetchContext(fctx))
	if err == nil {
		for msg := range batch.Messages() {
			got++
			f.inflight.Go(func() { f.deliver(ctx, msg, adm) })
		}
		err = batch.Error()
	}
	f.putBack(n - got)
	f.returnProbes(adm, n-got)
	if got > 0 {
		f.lastMsg = time.Now()
	}
	return err
}

// deliver runs one message in its slot. A slot of the shared caps is taken
// per message, once it is here: a slot is never held waiting for work.
func (f *feed) deliver(ctx context.Context, msg jetstream.Msg, adm admission) {
	defer func() { <-f.slots }()
	permit, ok := f.w.permit(ctx, f.lims, msg, f.log)
	if !ok {
		f.returnProbes(adm, 1)
		return
	}
	defer f.w.release(permit)
	f.w.handle(f.work, f.t, msg, adm)
}

// ensureConsumer gets the consumer again when fetching failed, and, after a
// quiet while, checks that it still exists: a fetch from a lost one may
// just come back empty.
func (f *feed) ensureConsumer(ctx context.Context, fetchErr error) {
	if ctx.Err() != nil {
		return
	}
	if fetchErr != nil && !errors.Is(fetchErr, context.DeadlineExceeded) && !errors.Is(fetchErr, jetstream.ErrNoMessages) {
		f.log.Warn("fetch failed, getting the consumer again", "err", fetchErr)
		sleep(ctx, time.Second)
		f.cons = f.acquire(ctx)
		return
	}
	if time.Since(f.lastMsg) <= consumerCheckEvery {
		return
	}
	f.lastMsg = time.Now()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := f.cons.Info(ictx)
	cancel()
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		f.log.Warn("consumer lost, creating it again", "err", err)
		f.cons = f.acquire(ctx)
	}
}

// acquire gets the target's consumer, creating it (and the stream) if
// missing: at start, and again whenever fetching says it is gone (NATS
// lost its store, or the consumer was deleted).
func (f *feed) acquire(ctx context.Context) jetstream.Consumer {
	for ctx.Err() == nil {
		cons, err := f.w.queue.Consumer(ctx, f.t.Name, f.maxInFlight)
		if err == nil {
			return cons
		}
		f.log.Warn("queue not ready, retrying", "err", err)
		sleep(ctx, 2*time.Second)
	}
	return nil
}

// waitForCircuit waits while target's circuit is open and no probe may
// go, checking every second so that a success of a delivery still in
// flight closes it at once. It returns how many of n deliveries may go: n
// while the circuit is closed, else the probes it took (circuit true).
func (w *Worker) waitForCircuit(ctx context.Context, target string, n int, log *slog.Logger) (int, bool) {
	b := w.breakers[target]
	logged := false
	for ctx.Err() == nil {
		wait, open := b.Admit()
		if !open {
			return n, false
		}
		if wait == 0 {
			k := 0
			for k < n && b.TakeProbe() {
				k++
			}
			if k > 0 {
				return k, true
			}
			wait = probeRecheck // the probes in flight decide
		} else if !logged {
			log.Info("circuit open: pausing deliveries", "for", wait.Round(time.Millisecond))
			logged = true
		}
		if wait > probeRecheck && w.shareCircuit(ctx, target) {
			log.Info("circuit open: probe requested by an operator")
			continue
		}
		sleep(ctx, min(wait, time.Second))
	}
	return n, false
}

// probeRecheck is how often a half-open circuit whose probes are all in
// flight is looked at again.
const probeRecheck = 20 * time.Millisecond

// release gives a permit's slots back.
func (w *Worker) release(p *limits.Permit) {
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.limits.Release(ctx, p)
	}
}
