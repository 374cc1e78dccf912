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
// deliveries go (half-open), jobs retried most first (see retries). Any
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
	holds       int // fresh jobs handed back this round (PreferRetry)
}

// NewBreaker returns a closed breaker; now is its clock unless cfg.Now is
// set.
func NewBreaker(cfg BreakerConfig, now func() time.Time) *Breaker {
	cfg = cfg.WithDefaults()
	if cfg.Now != nil {
		now = cfg.Now
	}
	return &Breaker{cfg: cfg, now: now, cooldown: cfg.Cooldown, retries: retryBook{due: map[string]retry{}}}
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
			b.open, b.openUntil, b.holds = true, now.Add(b.cooldown), 0
		}
	case probe && !now.Before(b.openUntil):
		// The first failed probe of a round: stay open, twice as long.
		// The round's other probes may still close it.
		b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
		b.openUntil, b.holds = now.Add(b.cooldown), 0
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
// again at due, its attempt number next: a probe prefers it to a job on
// an earlier attempt, which says less of the target (a target can refuse
// most first attempts, or the first two).
func (b *Breaker) RetryScheduled(id string, due time.Time, next int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retries.add(id, retry{due: due, next: next}, b.now())
}

// Claimed notes that job id runs now.
func (b *Breaker) Claimed(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.retries.due, id)
}

// PreferRetry reports whether a probe on the given attempt of its job
// should hand the job back, and for how long (the first cooldown): the circuit is open and a
// job on a later attempt is due, or will be within the cooldown. Each
// hand-back costs a claim and a record, so a round hands back at most
// holdBudget jobs; then any job probes.
func (b *Breaker) PreferRetry(attempt int) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A retry cannot run while the circuit holds it: it is expected for
	// as long as the pause too.
	grace := retryGrace + 2*b.cooldown
	if !b.open || b.holds >= holdBudget || !b.retries.waiting(b.now(), b.cooldown, grace, attempt) {
		return 0, false
	}
	b.holds++
	// The first cooldown, not the current one: once a retry closes the
	// circuit, the jobs handed back should not wait long.
	return b.cfg.Cooldown, true
}

// holdBudget is how many fresh jobs a half-open round hands back.
const holdBudget = 1000

// retryBook is the jobs of a target awaiting a retry in this process.
type retryBook struct {
	due map[string]retry
}

// retry is one job's next attempt: when, and its number.
type retry struct {
	due  time.Time
	next int
}

// retryBookMax bounds the book; past it, new retries are not noted.
const retryBookMax = 10_000

// retryGrace is how long past its due time a retry is still expected
// (the sweeper publishes it; another process may have taken it), besides
// the pause of an open circuit.
const retryGrace = 30 * time.Second

func (r *retryBook) add(id string, rt retry, now time.Time) {
	if len(r.due) >= retryBookMax {
		r.waiting(now, 0, retryGrace, 0) // drops the retries no longer expected
	}
	if len(r.due) < retryBookMax {
		r.due[id] = rt
	}
}

// waiting drops the retries no longer expected (due more than grace ago)
// and reports whether one on an attempt after attempt is due before
// now+within.
func (r *retryBook) waiting(now time.Time, within, grace time.Duration, attempt int) bool {
	soon := false
	for id, rt := range r.due {
		switch {
		case now.Sub(rt.due) > grace:
			delete(r.due, id)
		case rt.next > attempt && rt.due.Before(now.Add(within)):
			soon = true
		}
	}
	return soon
}
