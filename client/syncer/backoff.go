package syncer

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait between attempts while ferry is unreachable or
// busy: doubling from backoffInitial to backoffMax, with ±20 % jitter so
// that many syncs do not come back at once.
type backoff struct{ cur time.Duration }

func newBackoff() *backoff { return &backoff{} }

// next returns the next wait.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = backoffInitial
	} else {
		b.cur = min(2*b.cur, backoffMax)
	}
	return jitter(b.cur, 0.2)
}

func (b *backoff) reset() { b.cur = 0 }

// jitter returns d changed by up to ±frac of itself.
func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1))) //nolint:gosec // jitter, not a secret
}

// sayRetrying says, once per outage, that changes are kept pending.
func (e *Engine) sayRetrying(wait time.Duration, err error) {
	n := int(e.c.pending.Load())
	if e.c.retrying.Swap(true) {
		e.log.Debug("ferry still unreachable or busy", "pending", n, "retry_in", wait, "err", err)
		return
	}
	e.log.Warn("ferry unreachable or busy; changes kept pending", "pending", n, "retry_in", wait.Round(time.Millisecond), "err", err)
	e.emit(Event{Kind: EventRetrying, Count: n, Message: err.Error()})
}

// sayResumed says that ferry answers again after an outage.
func (e *Engine) sayResumed() {
	if e.c.retrying.Swap(false) {
		e.log.Info("ferry answers again")
		e.emit(Event{Kind: EventResumed, Count: int(e.c.pending.Load())})
	}
}
