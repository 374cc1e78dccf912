package rates_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/coord/rates"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestSharedRate has three "processes" (a pool and a store each) send as
// fast as they can to one target of rate 50/s, burst 5: together they get
// the burst at once and then 50 per second, not 50 each.
func TestSharedRate(t *testing.T) {
	t.Parallel()
	_, url := testenv.Postgres(t)
	ctx := testenv.Context(t)
	var stores []*rates.Store
	for range 3 {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		s := rates.NewStore(p, rates.Config{})
		if err := s.Ensure(ctx, "t", rates.Limit{Rate: 50, Burst: 5}); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	const n = 105 // the burst, then 100 at 50/s: 2 s
	var mu sync.Mutex
	var sent []time.Time
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for _, s := range stores {
		for range 4 { // four request slots per process
			wg.Go(func() {
				for range next {
					if _, err := s.Wait(ctx, "t"); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					sent = append(sent, time.Now())
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	took := time.Since(start)
	if took < 1900*time.Millisecond || took > 8*time.Second { // upper bound: a loaded machine
		t.Fatalf("%d requests took %s; want about 2s at 50/s after a burst of 5", n, took)
	}
	// No second holds more than rate + burst requests.
	for _, a := range sent {
		in := 0
		for _, b := range sent {
			if !b.Before(a) && b.Sub(a) < time.Second {
				in++
			}
		}
		if in > 50+5+2 { // 2: timer slack
			t.Fatalf("%d requests within one second", in)
		}
	}
}

// TestAIMD checks the adaptation: a 503 halves the rate once per
// DecreaseEvery, successes raise it again after the hold, slowly, never
// above the configured rate; Current reports it.
func TestAIMD(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	// Times long enough that a loaded machine's slow statement does not
	// cross them by accident.
	s := rates.NewStore(pool, rates.Config{DecreaseEvery: 300 * time.Millisecond,
		HoldAfterDecrease: time.Second, IncreaseEvery: 300 * time.Millisecond})
	if err := s.Ensure(ctx, "t", rates.Limit{Rate: 100, Burst: 10}); err != nil {
		t.Fatal(err)
	}
	rate := func() float64 {
		t.Helper()
		cur, err := s.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cur["t"].Rate
	}
	// waitPast waits until the database's clock, the one the bucket's
	// steps are timed by, is d past the bucket's column.
	waitPast := func(column string, d time.Duration) {
		t.Helper()
		var at time.Time
		if err := pool.QueryRow(ctx, `SELECT `+column+` FROM target_rates WHERE target = 't'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		testenv.WaitForDBTime(t, pool, at.Add(d))
	}
	// Several 503s at once (requests in flight together): one halving.
	for range 5 {
		if err := s.Throttled(ctx, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if r := rate(); r != 50 {
		t.Fatalf("rate %v after a burst of 503s, want 50", r)
	}
	waitPast("decreased_at", 300*time.Millisecond) // DecreaseEvery
	_ = s.Throttled(ctx, "t")
	if r := rate(); r != 25 {
		t.Fatalf("rate %v after a second 503 later, want 25", r)
	}
	// Within the hold, successes do not raise it.
	_ = s.Succeeded(ctx, "t")
	if r := rate(); r != 25 {
		t.Fatalf("rate %v right after a 503, want 25", r)
	}
	waitPast("decreased_at", time.Second) // HoldAfterDecrease
	_ = s.Succeeded(ctx, "t")
	_ = s.Succeeded(ctx, "t") // within IncreaseEvery: no second step
	if r := rate(); r != 30 {
		t.Fatalf("rate %v after the hold, want 30 (+5%% of 100)", r)
	}
	deadline := time.Now().Add(15 * time.Second) // 14 steps of 300 ms
	for rate() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("rate %v never came back to 100", rate())
		}
		_ = s.Succeeded(ctx, "t")
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 {
		waitPast("increased_at", 300*time.Millisecond) // IncreaseEvery: a step is allowed
		_ = s.Succeeded(ctx, "t")
	}
	if r := rate(); r != 100 {
		t.Fatalf("rate %v, above the configured 100", r)
	}
	// Changing the configured rate lowers a current rate above it.
	if err := s.Ensure(ctx, "t", rates.Limit{Rate: 40, Burst: 4}); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current(ctx)
	if st := cur["t"]; st.Rate != 40 || st.MaxRate != 40 || st.Burst != 4 || st.Lowered.IsZero() {
		t.Fatalf("state after reconfiguring: %+v", st)
	}
	// A Postgres crash empties the unlogged table: Reserve says so.
	if _, err := pool.Exec(ctx, `DELETE FROM target_rates`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reserve(ctx, "t"); !errors.Is(err, rates.ErrNoBucket) {
		t.Fatalf("Reserve on a lost bucket: %v, want ErrNoBucket", err)
	}
}

// BenchmarkReserve measures one token taken from a shared bucket, by
// parallel takers.
func BenchmarkReserve(b *testing.B) {
	pool, _ := testenv.Postgres(b)
	ctx := context.Background()
	s := rates.NewStore(pool, rates.Config{})
	if err := s.Ensure(ctx, "t", rates.Limit{Rate: 1e9, Burst: 1e9}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Reserve(ctx, "t"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
