package worker

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/internal/coord/rates"
	"github.com/ferry-relay/ferry/targets"
)

// Rates is the shared, adaptive request rate of the targets (package
// rates): a token before each delivery request, and what the target
// answered after it.
type Rates interface {
	Ensure(ctx context.Context, target string, l rates.Limit) error
	Wait(ctx context.Context, target string) (atMax bool, err error)
	Throttled(ctx context.Context, target string) error
	Succeeded(ctx context.Context, target string) error
}

// pacer applies a target's `rate` around each delivery attempt. A delivery
// attempt takes one token: one request for the http kind; the document
// systems' multi-step deliveries make several requests per attempt and
// are paced per attempt. The rate is a courtesy to the target, not a
// promise to keep: when Postgres cannot answer, the attempt goes unpaced
// (it will hardly get further: its job's record needs Postgres too).
type pacer struct {
	rates Rates
	log   logger

	mu       sync.Mutex
	ensured  map[string]bool
	atMax    map[string]bool
	warnedAt time.Time
}

type logger interface {
	Warn(msg string, args ...any)
}

func newPacer(r Rates, log logger) *pacer {
	return &pacer{rates: r, log: log, ensured: map[string]bool{}, atMax: map[string]bool{}}
}

// wait waits for t's next token; an error is ctx's.
func (p *pacer) wait(ctx context.Context, t *targets.Target) error {
	if p == nil || p.rates == nil || t.Rate <= 0 {
		return nil
	}
	p.mu.Lock()
	ensured := p.ensured[t.Name]
	p.mu.Unlock()
	if !ensured {
		if err := p.rates.Ensure(ctx, t.Name, rates.Limit{Rate: t.Rate, Burst: max(t.Burst, 1)}); err != nil {
			p.warn("target rate unavailable: delivering unpaced", err)
			return ctx.Err()
		}
		p.mu.Lock()
		p.ensured[t.Name] = true
		p.mu.Unlock()
	}
	atMax, err := p.rates.Wait(ctx, t.Name)
	if errors.Is(err, rates.ErrNoBucket) {
		// Postgres restarted and emptied the buckets: make it again.
		if err = p.rates.Ensure(ctx, t.Name, rates.Limit{Rate: t.Rate, Burst: max(t.Burst, 1)}); err == nil {
			atMax, err = p.rates.Wait(ctx, t.Name)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.warn("target rate unavailable: delivering unpaced", err)
		return nil
	}
	p.mu.Lock()
	p.atMax[t.Name] = atMax
	p.mu.Unlock()
	return nil
}

// observe adapts t's rate to the attempt's outcome: a 429 or 503 lowers
// it, a success raises it again (a write only while it is below `rate`).
func (p *pacer) observe(t *targets.Target, err error) {
	if p == nil || p.rates == nil || t.Rate <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err == nil {
		p.mu.Lock()
		atMax := p.atMax[t.Name]
		p.mu.Unlock()
		if !atMax {
			if err := p.rates.Succeeded(ctx, t.Name); err != nil {
				p.warn("raising the target rate", err)
			}
		}
		return
	}
	var te *targets.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusServiceUnavailable) {
		if err := p.rates.Throttled(ctx, t.Name); err != nil {
			p.warn("lowering the target rate", err)
		}
	}
}

// warn logs at most once a minute.
func (p *pacer) warn(msg string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.warnedAt) < time.Minute {
		return
	}
	p.warnedAt = time.Now()
	p.log.Warn(msg, "err", err)
}
