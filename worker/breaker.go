package worker

import (
	"sync"
	"time"
)

// BreakerConfig tunes a circuit breaker.
type BreakerConfig struct {
	// Threshold is how many failures in a row that say the target is
	// unwell (a 5xx, a timeout, a 408 or 429) open the circuit, when no
	// delivery succeeded within Window.
	Threshold int
	// Window is how recent a success keeps the circuit closed: a target
	// that delivers at all keeps its share of deliveries.
	Window time.Duration
	// Cooldown is the first pause once open; it doubles while probes fail.
	Cooldown time.Duration
	// MaxCooldown caps the pause.
	MaxCooldown time.Duration
	// Probes is how many deliveries a half-open circuit lets through at
	// once; any success among them closes it.
	Probes int
	// Now, if set, is the breaker's clock instead of the worker's: tests
	// move it to end a cooldown at once.
	Now func() time.Time
}

// Defaults of BreakerConfig.
const (
	BreakerThresholdDefault   = 5
	BreakerWindowDefault      = 10 * time.Second
	BreakerCooldownDefault    = 5 * time.Second
	BreakerMaxCooldownDefault = 5 * time.Minute
	BreakerProbesDefault      = 3
)

// WithDefaults returns c with unset fields at their defaults.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Threshold == 0 {
		c.Threshold = BreakerThresholdDefault
	}
	if c.Window == 0 {
		c.Window = BreakerWindowDefault
	}
	if c.Cooldown == 0 {
		c.Cooldown = BreakerCooldownDefault
	}
	if c.MaxCooldown == 0 {
		c.MaxCooldown = BreakerMaxCooldownDefault
	}
	if c.Probes == 0 {
		c.Probes = BreakerProbesDefault
	}
	return c
}

// Breaker stops a worker from hammering a target that fails every request.
// After Threshold failures in a row, with no success within Window, it
// opens: deliveries to the target pause for the cooldown, then up to Probes
// deliveries go (half-open), jobs already retried first (see retries). Any
// success closes the circuit; a failed probe opens it again for twice as
// long, up to MaxCooldown. Jobs are not failed by an open circuit: they
// wait in the queue.
type Breaker struct {
	cfg BreakerConfig
	now func() time.Time

	mu          sync.Mutex
	failures    int
	lastSuccess time.Time
	open        bool
	cooldown    time.Duration
	openUntil   time.Time
	probing     int // probes in flight
	retries     retryBook
}

// NewBreaker returns a closed breaker; now is its clock unless cfg.Now is
// set.
func NewBreaker(cfg BreakerConfig, now func() time.Time) *Breaker {
	cfg = cfg.WithDefaults()
	if cfg.Now != nil {
		now = cfg.Now
	}
	return &Breaker{cfg: cfg, now: now, cooldown: cfg.Cooldown, retries: retryBook{due: map[string]time.Time{}}}
}

// Admit says how long to wait before the next delivery, and whether the
// circuit is open, so that deliveries go only as probes (TakeProbe).
func (b *Breaker) Admit() (wait time.Duration, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return 0, false
	}
	if d := b.openUntil.Sub(b.now()); d > 0 {
		return d, true
	}
	return 0, true
}

// TakeProbe reserves one probe delivery of a half-open circuit; false when
// the circuit is closed, still cooling down, or Probes are in flight.
func (b *Breaker) TakeProbe() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open || b.now().Before(b.openUntil) || b.probing >= b.cfg.Probes {
		return false
	}
	b.probing++
	return true
}

// ReturnProbe gives back a probe that sent nothing.
func (b *Breaker) ReturnProbe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = max(b.probing-1, 0)
}

// Record notes the outcome of a delivery: ok is false for a failure that
// says the target is unwell (a 5xx, a timeout), true otherwise; probe says
// it was a probe (TakeProbe).
func (b *Breaker) Record(ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = max(b.probing-1, 0)
	}
	now := b.now()
	if ok {
		b.failures, b.lastSuccess, b.open, b.cooldown = 0, now, false, b.cfg.Cooldown
		return
	}
	b.failures++
	switch {
	case !b.open:
		if b.failures >= b.cfg.Threshold && now.Sub(b.lastSuccess) >= b.cfg.Window {
			b.open, b.openUntil = true, now.Add(b.cooldown)
		}
	case probe && !now.Before(b.openUntil):
		// The first failed probe of a round: stay open, twice as long.
		// The round's other probes may still close it.
		b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
		b.openUntil = now.Add(b.cooldown)
	default:
		// A delivery already in flight when the circuit opened, or
		// another probe of a round that failed: it says nothing new.
	}
}

// Open reports whether the circuit is open (deliveries paused).
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// RetryScheduled notes that job id failed against the target and runs
// again at due: a probe prefers it to a fresh job, whose first attempt
// says less of the target (a target can refuse most first attempts).
func (b *Breaker) RetryScheduled(id string, due time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retries.add(id, due, b.now())
}

// Claimed notes that job id runs now.
func (b *Breaker) Claimed(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.retries.due, id)
}

// PreferRetry reports whether a probe should hand back a fresh job, and
// for how long: the circuit is open and a retried job is due, or will be
// within the cooldown.
func (b *Breaker) PreferRetry() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cooldown, b.open && b.retries.waiting(b.now(), b.cooldown)
}

// retryBook is the jobs of a target awaiting a retry in this process.
type retryBook struct {
	due map[string]time.Time
}

// retryBookMax bounds the book; past it, new retries are not noted.
const retryBookMax = 10_000

// retryGrace is how long past its due time a retry is still expected
// (the sweeper publishes it; another process may have taken it).
const retryGrace = 30 * time.Second

func (r *retryBook) add(id string, due, now time.Time) {
	if len(r.due) >= retryBookMax {
		r.waiting(now, 0) // drops the retries no longer expected
	}
	if len(r.due) < retryBookMax {
		r.due[id] = due
	}
}

// waiting drops the retries no longer expected and reports whether one is
// due before now+within.
func (r *retryBook) waiting(now time.Time, within time.Duration) bool {
	soon := false
	for id, due := range r.due {
		switch {
		case now.Sub(due) > retryGrace:
			delete(r.due, id)
		case due.Before(now.Add(within)):
			soon = true
		}
	}
	return soon
}
