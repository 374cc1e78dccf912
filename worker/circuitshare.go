package worker

import (
	"context"
	"time"
)

// circuitSharer is the side of the target states (targetstate.Store) that
// shares an open circuit: when this process probes next, and an
// operator's "probe now" (POST /v1/targets/{name}/resume).
type circuitSharer interface {
	ShareCircuit(ctx context.Context, target string, next time.Time) (bool, error)
}

// shareCircuit tells every process when this process's open circuit to
// target probes next (GET /v1/targets, the dashboard, ferry targets) and
// reports whether an operator asked for a probe now: then the breaker's
// next probe is due at once.
func (w *Worker) shareCircuit(ctx context.Context, target string) bool {
	cs, ok := w.states.(circuitSharer)
	if !ok {
		return false
	}
	b := w.breakers[target]
	next := b.OpenUntil()
	if next.IsZero() {
		return false
	}
	requested, err := cs.ShareCircuit(ctx, target, next)
	if err != nil {
		w.log.Debug("sharing the circuit's next probe failed", "target", target, "err", err)
		return false
	}
	return requested && b.ProbeNow()
}

// OpenUntil returns when an open circuit's next probe is due; zero when
// the circuit is closed.
func (b *Breaker) OpenUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return time.Time{}
	}
	return b.openUntil
}

// ProbeNow makes an open circuit's next probe due now (an operator asked);
// its cooldown stays. It reports whether the circuit is open.
func (b *Breaker) ProbeNow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return false
	}
	if now := b.now(); b.openUntil.After(now) {
		b.openUntil = now
	}
	return true
}
