package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/sweeper"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
	"github.com/ferry-relay/ferry/worker"
)

// clock is a settable time for the breaker.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	b := worker.NewBreaker(worker.BreakerConfig{Threshold: 3, Cooldown: time.Second, MaxCooldown: 4 * time.Second, Probes: 2}, clk.Now)

	admit := func(wantWait time.Duration, wantOpen bool) {
		t.Helper()
		wait, open := b.Admit()
		if wait != wantWait || open != wantOpen {
			t.Fatalf("Admit() = %s, %v; want %s, %v", wait, open, wantWait, wantOpen)
		}
	}
	probes := func(want int) {
		t.Helper()
		n := 0
		for b.TakeProbe() {
			n++
		}
		if n != want {
			t.Fatalf("%d probes taken, want %d", n, want)
		}
	}
	// Failures below the threshold, or broken by a success, keep it closed.
	b.Record(false, false)
	b.Record(false, false)
	b.Record(true, false)
	clk.advance(time.Minute) // the success is out of the window
	b.Record(false, false)
	b.Record(false, false)
	admit(0, false)
	probes(0)
	// The threshold opens it: wait the cooldown, then Probes probes.
	b.Record(false, false)
	if !b.Open() {
		t.Fatal("circuit closed after 3 failures in a row")
	}
	admit(time.Second, true)
	probes(0)
	clk.advance(time.Second)
	admit(0, true)
	probes(2)
	// A failed probe opens it for twice as long, up to the cap; the
	// round's other probe failing too does not lengthen it again.
	b.Record(false, true)
	b.Record(false, true)
	admit(2*time.Second, true)
	clk.advance(2 * time.Second)
	probes(2)
	b.ReturnProbe() // a probe that sent nothing
	b.Record(false, true)
	admit(4*time.Second, true)
	clk.advance(4 * time.Second)
	probes(2)
	b.Record(false, true)
	admit(4*time.Second, true) // capped
	// A successful probe closes it, even after another failed, and the
	// cooldown starts over.
	b.Record(true, true)
	if b.Open() {
		t.Fatal("circuit open after a successful probe")
	}
	admit(0, false)
	clk.advance(time.Minute)
	for range 3 {
		b.Record(false, false)
	}
	admit(time.Second, true)
}

// A target that succeeds at all keeps its share: failures in a row do not
// open the circuit while a success is recent.
func TestBreakerRecentSuccessKeepsItClosed(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	b := worker.NewBreaker(worker.BreakerConfig{Threshold: 3, Window: 10 * time.Second}, clk.Now)
	b.Record(true, false)
	for range 20 {
		clk.advance(100 * time.Millisecond)
		b.Record(false, false)
	}
	if b.Open() {
		t.Fatal("20 failures 2 s after a success opened the circuit")
	}
	clk.advance(10 * time.Second)
	b.Record(false, false)
	if !b.Open() {
		t.Fatal("failures with no success for 10 s left the circuit closed")
	}
}

// A probe leaves its job for one on a later attempt due within the
// cooldown; with none (or once it ran), any job probes.
func TestBreakerProbesWithJobsRetriedMostFirst(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	b := worker.NewBreaker(worker.BreakerConfig{Threshold: 1, Cooldown: 5 * time.Second}, clk.Now)
	b.RetryScheduled("late", clk.Now().Add(time.Hour), 2)
	if _, ok := b.PreferRetry(1); ok {
		t.Fatal("prefers retries while closed")
	}
	b.Record(false, false)
	if _, ok := b.PreferRetry(1); ok {
		t.Fatal("prefers a retry due in an hour")
	}
	b.RetryScheduled("soon", clk.Now().Add(time.Second), 3)
	if wait, ok := b.PreferRetry(2); !ok || wait != 5*time.Second {
		t.Fatalf("PreferRetry(2) = %s, %v; want the cooldown, true: a third attempt is due", wait, ok)
	}
	if _, ok := b.PreferRetry(3); ok {
		t.Fatal("a third attempt gives way to another third attempt")
	}
	b.Claimed("soon")
	if _, ok := b.PreferRetry(1); ok {
		t.Fatal("prefers a retry that ran")
	}
}

// A worker facing a target that fails every request stops sending after the
// breaker's threshold, probes after the cooldown, and delivers everything
// once the target is back.
func TestWorkerStopsHammeringFailingTarget(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	q := testenv.Queue(t)
	q.SetAckWait(5 * time.Second)

	fake := sink.New(sink.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	fake.Fail(1_000_000, http.StatusServiceUnavailable, 0)
	// The breaker's clock stands still: the cooldown does not end until
	// the test moves it, however long the test takes.
	const threshold, cooldown = 4, 2 * time.Second

	yaml := "targets:\n  - name: down\n    kind: http\n    url: " + srv.URL + "/ok/\n" +
		"    concurrency: 1\n    max_attempts: 100\n    backoff: {initial: 10ms, max: 20ms}\n"
	cfgs, err := targets.ParseFile(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ts, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New})
	if err != nil {
		t.Fatal(err)
	}

	const n = 10
	var ids []string
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		data := bytes.Repeat([]byte{byte('a' + i)}, 100+i)
		st, err := objects.Put(ctx, storage.KeyFor(id), bytes.NewReader(data), int64(len(data)), 1<<20, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if _, _, err := store.Create(ctx, jobs.New{ID: id, Target: "down", Filename: "f.txt", ContentType: "text/plain",
			Size: st.Size, SHA256: hex.EncodeToString(sum[:]), ObjectKey: st.Key, MaxAttempts: 100}); err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(ctx, "down", id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The sweeper publishes the retries when they are due.
	sw := sweeper.New(sweeper.Config{Interval: 20 * time.Millisecond, Grace: 10 * time.Millisecond},
		sweeper.Deps{Jobs: store, Enqueue: enqueue.New(store, q, log), Log: log})
	// The breaker's clock stands still until the test moves it: the
	// circuit stays open as long as the test looks.
	clk := &clock{now: time.Now()}
	states := targetstate.NewStore(pool, "test-worker")
	w := worker.New(worker.Config{Lease: 5 * time.Second, ShutdownGrace: time.Second, States: states,
		Breaker: worker.BreakerConfig{Threshold: threshold, Cooldown: cooldown, Now: clk.Now}}, store, objects, q, ts, log)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sw.Run(runCtx) })
	wg.Go(func() { _ = w.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	// The circuit opens after the threshold's worth of requests, not one
	// per retry (every 10-20ms), and the retries wait.
	waitFor(t, 20*time.Second, "the circuit to open", func() bool {
		st, err := states.Get(ctx, "down")
		return err == nil && st.State == targetstate.CircuitOpen
	})
	waitFor(t, 10*time.Second, "a retry to wait for the circuit", func() bool {
		j, err := store.Get(ctx, jobs.AllTenants(), ids[0])
		return err == nil && j.Status == jobs.StatusRetrying && !j.NextAttemptAt.After(time.Now())
	})
	if got := len(fake.Requests()); got != threshold {
		t.Fatalf("%d requests to a failing target while its circuit is open; want the breaker to stop at %d", got, threshold)
	}

	// The target recovers and the cooldown ends: the probe succeeds and
	// the circuit closes.
	fake.Reset()
	clk.advance(cooldown)
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			j, err := store.Get(ctx, jobs.AllTenants(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status == jobs.StatusSuccess {
				break
			}
			if j.Status.Final() || time.Now().After(deadline) {
				t.Fatalf("job %s: %s after %d attempts (%s); want SUCCESS once the target is back", id, j.Status, j.Attempts, j.LastError)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := len(fake.Documents()); got != n {
		t.Errorf("target received %d documents, want %d", got, n)
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
