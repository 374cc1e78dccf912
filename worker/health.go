package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/targets"
)

// StateStore is where the worker shares each target's state with every
// process; *targetstate.Store is the one.
type StateStore interface {
	Get(ctx context.Context, target string) (targetstate.State, error)
	Pause(ctx context.Context, target, reason string, probe time.Duration) (bool, error)
	ClaimProbe(ctx context.Context, target string) (bool, error)
	ProbeFailed(ctx context.Context, target, reason string, max time.Duration) error
	Resume(ctx context.Context, target string) (bool, error)
	SetCircuit(ctx context.Context, target string, open bool, reason string) (bool, error)
}

// Limiter takes the slots of shared concurrency caps; *limits.Leases is
// the one.
type Limiter interface {
	Acquire(ctx context.Context, lims []limits.Limit) (*limits.Permit, error)
	TryAcquire(ctx context.Context, lims []limits.Limit) (*limits.Permit, bool, error)
	Release(ctx context.Context, p *limits.Permit)
	Run(ctx context.Context)
}

// stateTTL is how long a worker trusts the state it last read: another
// process's pause or an operator's resume is seen within it.
const stateTTL = time.Second

// health is one target's state as this process last read it.
type health struct {
	mu      sync.Mutex
	state   string
	readAt  time.Time
	circuit bool // this process's breaker is open
}

// limitsOf are the shared caps target t's deliveries take a slot of.
func limitsOf(t *targets.Target) []limits.Limit {
	var out []limits.Limit
	for _, l := range t.Limits() {
		out = append(out, limits.Limit{Group: l.Group, Max: l.Max})
	}
	return out
}

// stateOf returns target's state, read again from the store when the last
// read is older than stateTTL.
func (w *Worker) stateOf(ctx context.Context, name string) string {
	h := w.health[name]
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.states == nil || w.cfg.Now().Sub(h.readAt) < stateTTL {
		return h.state
	}
	st, err := w.states.Get(ctx, name)
	if err != nil {
		// Postgres is briefly away: keep what was known.
		return h.state
	}
	h.state, h.readAt = st.State, w.cfg.Now()
	return h.state
}

func (w *Worker) setState(name, state string) {
	h := w.health[name]
	h.mu.Lock()
	h.state, h.readAt = state, w.cfg.Now()
	h.mu.Unlock()
}

// waitWhilePaused holds target t's deliveries while its credentials are
// refused. One process at a time probes it when the probe is due: with the
// connector's CredentialProber (a login, a token), or else by letting one
// delivery through, which the caller is told with probe. It returns when
// the target is no longer paused or a delivery is to probe it.
func (w *Worker) waitWhilePaused(ctx context.Context, t *targets.Target, log *slog.Logger) (probe bool) {
	for ctx.Err() == nil {
		if w.stateOf(ctx, t.Name) != targetstate.PausedCredentials {
			return false
		}
		if w.states == nil {
			sleep(ctx, t.CredentialProbe)
			return true
		}
		won, err := w.states.ClaimProbe(ctx, t.Name)
		if err == nil && won {
			prober, ok := t.Deliverer.(targets.CredentialProber)
			if !ok {
				return true
			}
			pctx, cancel := context.WithTimeout(ctx, min(t.Timeout, 30*time.Second))
			perr := prober.ProbeCredentials(pctx)
			cancel()
			switch {
			case perr == nil:
				w.resumed(ctx, t, log)
				return false
			case targets.IsCredentials(perr):
				_ = w.states.ProbeFailed(ctx, t.Name, perr.Error(), targets.CredentialProbeMax)
			default:
				// Could not tell (the target is down, say): ask again
				// after the same interval.
				log.Debug("credential probe inconclusive", "err", perr)
			}
		}
		sleep(ctx, stateTTL)
	}
	return false
}

// credentialsRefused pauses target t (it refused the connector's
// credentials after its renewal) and logs it once, in the process whose
// report paused it. A probe delivery refused again backs the probes off.
func (w *Worker) credentialsRefused(ctx context.Context, t *targets.Target, err error, probe bool, log *slog.Logger) {
	w.setState(t.Name, targetstate.PausedCredentials)
	if w.states == nil {
		return
	}
	changed, serr := w.states.Pause(ctx, t.Name, err.Error(), t.CredentialProbe)
	switch {
	case serr != nil:
		log.Error("could not record the pause of the target; its jobs still wait", "err", serr)
	case changed:
		targetsPaused.WithLabelValues(t.Name).Inc()
		log.Warn("credentials refused: target paused, its jobs wait RETRYING; probing every credential_probe",
			"reason", err.Error(), "credential_probe", t.CredentialProbe)
	case probe:
		_ = w.states.ProbeFailed(ctx, t.Name, err.Error(), targets.CredentialProbeMax)
	}
}

// resumed marks a paused target ok again and logs it once.
func (w *Worker) resumed(ctx context.Context, t *targets.Target, log *slog.Logger) {
	w.setState(t.Name, targetstate.OK)
	if w.states == nil {
		return
	}
	if changed, err := w.states.Resume(ctx, t.Name); err == nil && changed {
		log.Info("credentials accepted again: target resumed")
	}
}

// recordCircuit shares a change of this process's circuit breaker.
func (w *Worker) recordCircuit(ctx context.Context, t *targets.Target, open bool, reason string, log *slog.Logger) {
	h := w.health[t.Name]
	h.mu.Lock()
	was := h.circuit
	h.circuit = open
	h.mu.Unlock()
	if was == open || w.states == nil {
		return
	}
	if changed, err := w.states.SetCircuit(ctx, t.Name, open, reason); err == nil && changed {
		if open {
			log.Warn("circuit open: deliveries keep failing, pausing and probing", "reason", reason)
		} else {
			log.Info("circuit closed: deliveries succeed again")
		}
	}
}

// permit takes a slot of every shared cap lims for the delivery of msg,
// waiting as long as it takes while telling the queue the message is in
// progress. On shutdown it hands the message back and reports false.
func (w *Worker) permit(ctx context.Context, lims []limits.Limit, msg jetstream.Msg, log *slog.Logger) (*limits.Permit, bool) {
	if len(lims) == 0 || w.limits == nil {
		return nil, true
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(w.queue.AckWait() / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	for {
		p, err := w.limits.Acquire(wctx, lims)
		switch {
		case err == nil:
			return p, true
		case ctx.Err() != nil:
			_ = msg.Nak()
			return nil, false
		}
		log.Warn("could not take a slot of the shared limit, retrying", "err", err)
		sleep(ctx, time.Second)
	}
}
