// Package backlog samples what waits for each target and exports it as
// Prometheus gauges: the messages waiting in the queue and in flight (from
// the counters JetStream keeps for each target's consumer), the age of the
// oldest job waiting (two index probes per target in Postgres), and each
// target's state (package targetstate sets its gauge when it reads it).
// It samples every few seconds in the background, so a scrape of /metrics
// costs nothing and no sample counts rows, however long the backlog.
package backlog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/queue"
)

// EveryDefault is how often the sampler samples.
const EveryDefault = 15 * time.Second

var (
	pendingGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_queue_pending_messages",
		Help: "Jobs ready for delivery that no worker has taken yet, by target (the target's JetStream consumer's pending count; a job waiting out a retry's backoff is not counted).",
	}, []string{"target"})
	inFlightGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_queue_in_flight_messages",
		Help: "Jobs a worker has taken and not yet finished, by target (the consumer's unacknowledged count).",
	}, []string{"target"})
	oldestGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_backlog_oldest_age_seconds",
		Help: "Age of the oldest job waiting for delivery (QUEUED or RETRYING), by target; 0 when none waits.",
	}, []string{"target"})
	sampledAt = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_backlog_sampled_timestamp_seconds",
		Help: "When this process last sampled the backlog (Unix time); a stale value means the gauges above are stale.",
	})
)

// Counter reads a target's queue counters (queue.Queue).
type Counter interface {
	TargetBacklog(ctx context.Context, target string) (queue.Backlog, error)
}

// Ages finds the oldest waiting job of each target (jobs.Store).
type Ages interface {
	OldestWaiting(ctx context.Context, targets []string) (map[string]time.Time, error)
}

// States reads the targets' states (targetstate.Store), which sets the
// ferry_target_state gauge.
type States interface {
	List(ctx context.Context, names []string) ([]targetstate.State, error)
}

// Config says what to sample and how often.
type Config struct {
	// Targets are the names of the configured targets.
	Targets []string
	// Every is the time between samples (EveryDefault when zero).
	Every time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Deps are what the sampler reads.
type Deps struct {
	Queue  Counter
	Jobs   Ages
	States States
	Log    *slog.Logger
}

// Sampler keeps the backlog gauges up to date.
type Sampler struct {
	cfg  Config
	deps Deps
	// warned remembers the last failure of each source logged, so a
	// source that stays down is logged once, not every sample.
	warned map[string]string
}

// New returns a sampler.
func New(cfg Config, d Deps) *Sampler {
	if cfg.Every <= 0 {
		cfg.Every = EveryDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Sampler{cfg: cfg, deps: d, warned: map[string]string{}}
}

// Run samples at once, then every Config.Every until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample sets every gauge once. A source that fails has its gauges
// removed rather than left at a stale value.
func (s *Sampler) Sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, max(s.cfg.Every, 5*time.Second))
	defer cancel()
	s.warn(ctx, "queue", s.sampleQueue(sctx))
	s.warn(ctx, "oldest waiting jobs", s.sampleAges(sctx))
	_, err := s.deps.States.List(sctx, s.cfg.Targets)
	s.warn(ctx, "target states", err)
	sampledAt.Set(float64(s.cfg.Now().UnixNano()) / 1e9)
}

// sampleQueue sets the queue gauges; a target without a consumer yet has
// none.
func (s *Sampler) sampleQueue(ctx context.Context) error {
	var failed error
	for _, t := range s.cfg.Targets {
		b, err := s.deps.Queue.TargetBacklog(ctx, t)
		if err != nil {
			pendingGauge.DeleteLabelValues(t)
			inFlightGauge.DeleteLabelValues(t)
			if !errors.Is(err, queue.ErrNoConsumer) {
				failed = err
			}
			continue
		}
		pendingGauge.WithLabelValues(t).Set(float64(b.Pending))
		inFlightGauge.WithLabelValues(t).Set(float64(b.InFlight))
	}
	return failed
}

// sampleAges sets the age gauges.
func (s *Sampler) sampleAges(ctx context.Context) error {
	oldest, err := s.deps.Jobs.OldestWaiting(ctx, s.cfg.Targets)
	now := s.cfg.Now()
	for _, t := range s.cfg.Targets {
		switch at, ok := oldest[t]; {
		case err != nil:
			oldestGauge.DeleteLabelValues(t)
		case ok:
			oldestGauge.WithLabelValues(t).Set(max(now.Sub(at).Seconds(), 0))
		default:
			oldestGauge.WithLabelValues(t).Set(0)
		}
	}
	return err
}

// warn logs a source's failure when it changes, and its recovery; not
// while ctx (the sampler's own) is ending.
func (s *Sampler) warn(ctx context.Context, source string, err error) {
	if ctx.Err() != nil {
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch msg {
	case s.warned[source]:
	case "":
		s.deps.Log.Info("backlog sampling works again", "source", source)
	default:
		s.deps.Log.Warn("backlog sampling failed; its gauges are left out until it works", "source", source, "err", err)
	}
	s.warned[source] = msg
}
