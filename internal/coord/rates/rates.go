// Package rates paces the requests ferry makes to each target at the
// target's `rate` (requests per second, with `burst`), shared by every
// worker process, and adapts that rate to what the target says: a 429 or
// 503 halves it (at most once per DecreaseEvery), and after a quiet
// HoldAfterDecrease each further second of successes adds a twentieth of
// the configured rate back, never above it (additive increase,
// multiplicative decrease).
//
// The bucket is a row per target in Postgres (unlogged table target_rates,
// migration 006: pacing state needs no WAL). Taking a token is one UPDATE that refills the bucket for the time
// elapsed and takes one token, even if that leaves it below zero: the
// caller then waits until its token would have arrived, without asking
// again. One round trip per request, no polling, and the row lock orders
// concurrent takers of every process. Postgres rather than NATS KV: every
// process already holds a Postgres pool and a delivery already costs
// several Postgres writes; a KV bucket update is a compare-and-swap that
// is retried on every conflict (contention grows with the processes) and,
// on a replicated stream, a Raft commit; and the rate must keep working
// while a NATS server is lost. BENCHMARKS.md has the measured cost.
package rates

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoBucket means the target has no bucket (yet, or any more: the table
// is unlogged, and a Postgres crash empties it): call Ensure.
var ErrNoBucket = errors.New("target has no rate bucket")

// Defaults of Config.
const (
	DecreaseEveryDefault     = time.Second
	HoldAfterDecreaseDefault = 10 * time.Second
	IncreaseEveryDefault     = time.Second
	// MinShare is the lowest the rate falls to, as a share of the
	// configured rate.
	MinShare = 0.05
	// IncreaseShare is the share of the configured rate added back per
	// IncreaseEvery of successes.
	IncreaseShare = 0.05
)

// Config tunes the adaptation (tests shorten the times).
type Config struct {
	DecreaseEvery     time.Duration
	HoldAfterDecrease time.Duration
	IncreaseEvery     time.Duration
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.DecreaseEvery == 0 {
		c.DecreaseEvery = DecreaseEveryDefault
	}
	if c.HoldAfterDecrease == 0 {
		c.HoldAfterDecrease = HoldAfterDecreaseDefault
	}
	if c.IncreaseEvery == 0 {
		c.IncreaseEvery = IncreaseEveryDefault
	}
	return c
}

// Limit is a target's configured rate.
type Limit struct {
	Rate  float64 // requests per second
	Burst int     // requests that may go at once after a quiet time
}

// Store is the shared buckets.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
}

// NewStore returns the buckets in pool's database.
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	return &Store{pool: pool, cfg: cfg.WithDefaults()}
}

// Ensure creates target's bucket, full, or updates its configured rate and
// burst (the current rate stays, lowered to the new rate if above it).
func (s *Store) Ensure(ctx context.Context, target string, l Limit) error {
	burst := float64(max(l.Burst, 1))
	_, err := s.pool.Exec(ctx, `INSERT INTO target_rates (target, max_rate, burst, rate, tokens)
		VALUES ($1, $2, $3, $2, $3)
		ON CONFLICT (target) DO UPDATE SET max_rate = EXCLUDED.max_rate, burst = EXCLUDED.burst,
			rate = LEAST(target_rates.rate, EXCLUDED.max_rate)`, target, l.Rate, burst)
	if err != nil {
		return fmt.Errorf("rate of target %s: %w", target, err)
	}
	return nil
}

// Reserve takes one token of target's bucket and returns how long the
// caller must wait before sending its request (zero: at once), and whether
// the rate is at its configured maximum (a success then changes nothing).
func (s *Store) Reserve(ctx context.Context, target string) (wait time.Duration, atMax bool, err error) {
	var secs float64
	err = s.pool.QueryRow(ctx, `
		WITH cur AS (
			SELECT target, rate, clock_timestamp() AS ts,
				LEAST(burst, tokens + rate * EXTRACT(EPOCH FROM clock_timestamp() - updated_at)) AS avail
			FROM target_rates WHERE target = $1 FOR UPDATE)
		UPDATE target_rates t SET tokens = cur.avail - 1, updated_at = cur.ts
		FROM cur WHERE t.target = cur.target
		RETURNING GREATEST(0, (1 - cur.avail) / cur.rate), t.rate >= t.max_rate`, target).Scan(&secs, &atMax)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("rate of target %s: %w", target, ErrNoBucket)
	}
	if err != nil {
		return 0, false, fmt.Errorf("rate of target %s: %w", target, err)
	}
	return time.Duration(secs * float64(time.Second)), atMax, nil
}

// Wait takes a token and waits for it; it returns early with ctx's error.
// atMax is Reserve's.
func (s *Store) Wait(ctx context.Context, target string) (atMax bool, err error) {
	d, atMax, err := s.Reserve(ctx, target)
	if err != nil || d <= 0 {
		return atMax, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return atMax, ctx.Err()
	case <-t.C:
		return atMax, nil
	}
}

// Throttled records that the target answered 429 or 503: the rate halves,
// at most once per DecreaseEvery (the answers of requests already in
// flight count once), down to MinShare of the configured rate.
func (s *Store) Throttled(ctx context.Context, target string) error {
	_, err := s.pool.Exec(ctx, `UPDATE target_rates SET
			rate = GREATEST(max_rate * $2, rate / 2), decreased_at = clock_timestamp()
		WHERE target = $1 AND decreased_at < clock_timestamp() - $3::interval`,
		target, MinShare, s.cfg.DecreaseEvery.String())
	if err != nil {
		return fmt.Errorf("rate of target %s: %w", target, err)
	}
	return nil
}

// Succeeded records a success: once HoldAfterDecrease has passed since the
// last decrease, the rate rises by IncreaseShare of the configured rate,
// at most once per IncreaseEvery, never above it. A rate at its maximum
// costs no write.
func (s *Store) Succeeded(ctx context.Context, target string) error {
	_, err := s.pool.Exec(ctx, `UPDATE target_rates SET
			rate = LEAST(max_rate, rate + max_rate * $2), increased_at = clock_timestamp()
		WHERE target = $1 AND rate < max_rate
			AND decreased_at < clock_timestamp() - $3::interval
			AND increased_at < clock_timestamp() - $4::interval`,
		target, IncreaseShare, s.cfg.HoldAfterDecrease.String(), s.cfg.IncreaseEvery.String())
	if err != nil {
		return fmt.Errorf("rate of target %s: %w", target, err)
	}
	return nil
}

// State is a target's rate right now.
type State struct {
	Rate    float64 // current, adapted
	MaxRate float64 // configured
	Burst   int
	// Lowered is when a 429 or 503 last lowered the rate (zero: never).
	Lowered time.Time
}

// Current returns the state of every target that has a rate.
func (s *Store) Current(ctx context.Context) (map[string]State, error) {
	rows, err := s.pool.Query(ctx, `SELECT target, rate, max_rate, burst,
		CASE WHEN decreased_at = '-infinity' THEN NULL ELSE decreased_at END FROM target_rates`)
	if err != nil {
		return nil, fmt.Errorf("target rates: %w", err)
	}
	defer rows.Close()
	out := map[string]State{}
	for rows.Next() {
		var name string
		var st State
		var burst float64
		var lowered *time.Time
		if err := rows.Scan(&name, &st.Rate, &st.MaxRate, &burst, &lowered); err != nil {
			return nil, fmt.Errorf("target rates: %w", err)
		}
		st.Burst = int(burst)
		if lowered != nil {
			st.Lowered = *lowered
		}
		out[name] = st
	}
	return out, rows.Err()
}
