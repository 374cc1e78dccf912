// Package limits caps concurrent deliveries across target entries and
// worker processes: a limit_group shared by several targets, a target's
// max_in_flight, a Workfront instance's ten concurrent requests.
//
// The cap is a set of numbered slots in Postgres (table limit_slots,
// migration 004): a worker takes a slot whose number is below the cap and
// that nobody holds, before it fetches a job, and gives it back when the
// delivery ends. A slot held is a row with its holder and an expiry; the
// holder renews the expiry of all its slots in one statement every third of
// the lease, so a delivery of any length keeps its slot, and a worker that
// dies (kill -9, a lost network) stops renewing: its slots expire after
// one lease and count no more. Postgres is already what every process
// shares and what decides which job runs; taking a slot is one INSERT on a
// primary key, so two processes can never hold the same slot, whatever
// their timing. Waiting is polling, with jitter, at most every
// PollDefault: the cap is on deliveries (each many requests long), not on
// single requests, so the poll costs little next to the work.
//
// It is the mechanism beside which a rate limiter (requests per second)
// may sit: a Limit caps how many deliveries run at once, not how often
// they start.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Leases.
const (
	LeaseDefault = 30 * time.Second
	PollDefault  = 200 * time.Millisecond
)

// Limit is one cap: at most Max deliveries of every target in Group at
// once, across all processes.
type Limit struct {
	Group string
	Max   int
}

// Permit is the slots one delivery holds, one per Limit.
type Permit struct {
	slots []slot
}

type slot struct {
	group string
	n     int
}

// Leases takes and gives back slots for one process.
type Leases struct {
	db     *pgxpool.Pool
	holder string
	lease  time.Duration
	poll   time.Duration

	mu      sync.Mutex
	held    int
	pollers map[string]chan struct{} // one waiter per set of groups polls
	freed   chan struct{}            // closed (and replaced) when a slot is given back here
}

// New returns the leases of the process named holder (unique: a worker id
// with a random part), whose slots expire lease after their last renewal
// (LeaseDefault if zero).
func New(db *pgxpool.Pool, holder string, lease time.Duration) *Leases {
	if lease <= 0 {
		lease = LeaseDefault
	}
	return &Leases{db: db, holder: holder, lease: lease, poll: PollDefault, pollers: map[string]chan struct{}{}, freed: make(chan struct{})}
}

// Acquire takes one slot of every limit, waiting until it can or ctx ends.
// Slots are taken in the order of the groups' names and all given back
// when one is full, so two deliveries never wait on each other's half.
// Within the process, the waiters for the same limits line up and only
// the first polls Postgres.
func (l *Leases) Acquire(ctx context.Context, lims []Limit) (*Permit, error) {
	if len(lims) == 0 {
		return &Permit{}, nil
	}
	if p, ok, err := l.TryAcquire(ctx, lims); err != nil || ok {
		return p, err
	}
	line := l.poller(lims)
	select {
	case line <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-line }()
	for {
		p, ok, err := l.TryAcquire(ctx, lims)
		if err != nil || ok {
			return p, err
		}
		// Poll again after a while, or at once when this process gives
		// a slot back (another process's release is seen by the poll).
		l.mu.Lock()
		freed := l.freed
		l.mu.Unlock()
		wait := l.poll/2 + time.Duration(rand.Int64N(int64(l.poll)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		case <-freed:
			t.Stop()
		}
	}
}

// poller is the line of the waiters for lims: a channel of one.
func (l *Leases) poller(lims []Limit) chan struct{} {
	key := ""
	for _, lim := range lims {
		key += lim.Group + "\x00"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.pollers[key]
	if !ok {
		c = make(chan struct{}, 1)
		l.pollers[key] = c
	}
	return c
}

// TryAcquire takes one slot of every limit if all have one free, and
// reports whether it did.
func (l *Leases) TryAcquire(ctx context.Context, lims []Limit) (*Permit, bool, error) {
	sorted := append([]Limit(nil), lims...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Group < sorted[j].Group })
	p := &Permit{}
	for _, lim := range sorted {
		n, ok, err := l.take(ctx, lim)
		if err != nil || !ok {
			l.give(context.WithoutCancel(ctx), p)
			return nil, false, err
		}
		p.slots = append(p.slots, slot{lim.Group, n})
	}
	l.mu.Lock()
	l.held += len(p.slots)
	l.mu.Unlock()
	return p, true, nil
}

// take claims the lowest free slot of lim. A slot another process took
// between the look and the insert makes the insert do nothing; take then
// looks again, a few times.
func (l *Leases) take(ctx context.Context, lim Limit) (int, bool, error) {
	for range 3 {
		var n int
		err := l.db.QueryRow(ctx, `
			WITH free AS (
				SELECT g FROM generate_series(0, $2 - 1) AS g
				WHERE NOT EXISTS (SELECT 1 FROM limit_slots s WHERE s.grp = $1 AND s.slot = g AND s.expires_at > now())
				ORDER BY g LIMIT 1
			)
			INSERT INTO limit_slots AS s (grp, slot, holder, expires_at)
			SELECT $1, g, $3, now() + $4 * interval '1 millisecond' FROM free
			ON CONFLICT (grp, slot) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
				WHERE s.expires_at <= now()
			RETURNING slot`, lim.Group, lim.Max, l.holder, l.lease.Milliseconds()).Scan(&n)
		switch {
		case err == nil:
			return n, true, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, false, fmt.Errorf("take a slot of %s: %w", lim.Group, err)
		}
		var free bool
		if err := l.db.QueryRow(ctx, `SELECT count(*) < $2 FROM limit_slots WHERE grp = $1 AND slot < $2 AND expires_at > now()`,
			lim.Group, lim.Max).Scan(&free); err != nil {
			return 0, false, fmt.Errorf("count slots of %s: %w", lim.Group, err)
		}
		if !free {
			return 0, false, nil
		}
	}
	return 0, false, nil
}

// Release gives the permit's slots back. It is safe on a nil or empty
// permit, and on one already released.
func (l *Leases) Release(ctx context.Context, p *Permit) {
	if p == nil || len(p.slots) == 0 {
		return
	}
	n := len(p.slots)
	l.give(ctx, p)
	l.mu.Lock()
	l.held -= n
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

// give deletes the permit's rows.
func (l *Leases) give(ctx context.Context, p *Permit) {
	if len(p.slots) == 0 {
		return
	}
	groups := make([]string, len(p.slots))
	nums := make([]int32, len(p.slots))
	for i, s := range p.slots {
		groups[i], nums[i] = s.group, int32(s.n)
	}
	// A failed release costs the slot until its lease expires.
	_, _ = l.db.Exec(ctx, `
		DELETE FROM limit_slots s USING unnest($1::text[], $2::int[]) AS r(grp, slot)
		WHERE s.grp = r.grp AND s.slot = r.slot AND s.holder = $3`, groups, nums, l.holder)
	p.slots = nil
}

// Run renews this process's slots every third of the lease until ctx ends,
// then gives every slot it still holds back.
func (l *Leases) Run(ctx context.Context) {
	t := time.NewTicker(l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_, _ = l.db.Exec(context.WithoutCancel(ctx), `DELETE FROM limit_slots WHERE holder = $1`, l.holder)
			return
		case <-t.C:
		}
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		if held == 0 {
			continue
		}
		_, _ = l.db.Exec(ctx, `UPDATE limit_slots SET expires_at = now() + $2 * interval '1 millisecond' WHERE holder = $1`, l.holder, l.lease.Milliseconds())
	}
}

// InUse returns how many slots of group are held now, across processes.
func (l *Leases) InUse(ctx context.Context, group string) (int, error) {
	var n int
	err := l.db.QueryRow(ctx, `SELECT count(*) FROM limit_slots WHERE grp = $1 AND expires_at > now()`, group).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("slots of %s: %w", group, err)
	}
	return n, nil
}
