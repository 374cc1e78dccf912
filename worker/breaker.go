package worker

import (
	"sync"
	"time"
)

// BreakerConfig tunes a circuit breaker.
type BreakerConfig struct {
	// Threshold is how many retryable failures in a row open the circuit.
	Threshold int
	// Cooldown is the first pause once open; it doubles while probes fail.
	Cooldown time.Duration
	// MaxCooldown caps the pause.
	MaxCooldown time.Duration
	// Now, if set, is the breaker's clock instead of the worker's: tests
	// move it to end a cooldown at once.
	Now func() time.Time
}

// Defaults of BreakerConfig.
const (
	BreakerThresholdDefault   = 5
	BreakerCooldownDefault    = 5 * time.Second
	BreakerMaxCooldownDefault = 5 * time.Minute
)

// Breaker stops a worker from hammering a target that fails every request.
// After Threshold retryable failures in a row it opens: deliveries to the
// target pause for the cooldown, then one probe delivery runs (half-open).
// A success closes the circuit; a failure opens it again for twice as long,
// up to MaxCooldown. Jobs are not failed by an open circuit: they wait in
// the queue.
type Breaker struct {
	cfg BreakerConfig
	now func() time.Time

	mu        sync.Mutex
	failures  int
	cooldown  time.Duration
	openUntil time.Time
	probing   bool
}

// WithDefaults returns c with unset fields at their defaults.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Threshold == 0 {
		c.Threshold = BreakerThresholdDefault
	}
	if c.Cooldown == 0 {
		c.Cooldown = BreakerCooldownDefault
	}
	if c.MaxCooldown == 0 {
		c.MaxCooldown = BreakerMaxCooldownDefault
	}
	return c
}

// NewBreaker returns a closed breaker; now is its clock unless cfg.Now is
// set.
func NewBreaker(cfg BreakerConfig, now func() time.Time) *Breaker {
	cfg = cfg.WithDefaults()
	if cfg.Now != nil {
		now = cfg.Now
	}
	return &Breaker{cfg: cfg, now: now, cooldown: cfg.Cooldown}
}

// Admit says how long to wait before the next delivery, and whether that
// delivery is a lone probe of an open circuit.
func (b *Breaker) Admit() (wait time.Duration, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.cfg.Threshold {
		return 0, false
	}
	if d := b.openUntil.Sub(b.now()); d > 0 {
		return d, true
	}
	b.probing = true
	return 0, true
}

// Record notes the outcome of a delivery: ok is false for a failure that
// says the target is unwell (a 5xx, a timeout), true otherwise.
func (b *Breaker) Record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures, b.cooldown, b.probing = 0, b.cfg.Cooldown, false
		return
	}
	b.failures++
	switch {
	case b.failures < b.cfg.Threshold:
		return
	case b.failures == b.cfg.Threshold:
		b.openUntil = b.now().Add(b.cooldown)
	case b.probing:
		// The probe failed: stay open, twice as long.
		b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
		b.openUntil = b.now().Add(b.cooldown)
	default:
		// A delivery already in flight when the circuit opened: it says
		// nothing new about the target.
	}
	b.probing = false
}

// Open reports whether the circuit is open (deliveries paused).
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.cfg.Threshold
}
