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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/coord/rates"
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

// timedSink records when each request arrives.
type timedSink struct {
	next http.Handler
	mu   sync.Mutex
	at   []time.Time
}

func (s *timedSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	s.next.ServeHTTP(w, r)
}

// TestSharedAdaptiveRate runs two worker "processes" (a pool, store and
// worker each) against one target with rate 20/s, burst 2, and 8 slots per
// process: together they send 20 requests a second, not 20 each; the
// target's 429s lower the shared rate, which GET /v1/targets would show.
func TestSharedAdaptiveRate(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	_, url := testenv.Postgres(t)
	objects := testenv.Storage(t)
	q := testenv.Queue(t)
	q.SetAckWait(5 * time.Second)

	fake := sink.New(sink.Options{})
	ts := &timedSink{next: fake}
	srv := httptest.NewServer(ts)
	t.Cleanup(srv.Close)
	fake.Fail(3, http.StatusTooManyRequests, 0)

	yaml := "targets:\n  - name: paced\n    kind: http\n    url: " + srv.URL + "/ok/\n" +
		"    concurrency: 8\n    rate: 20\n    burst: 2\n    max_attempts: 10\n    backoff: {initial: 10ms, max: 20ms}\n"
	cfgs, err := targets.ParseFile(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	set, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	var store *jobs.Store
	var rs *rates.Store
	for i := range 2 {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		st := jobs.NewStore(pool)
		r := rates.NewStore(pool, rates.Config{HoldAfterDecrease: time.Minute})
		if i == 0 {
			store, rs = st, r
		}
		sw := sweeper.New(sweeper.Config{Interval: 20 * time.Millisecond, Grace: 10 * time.Millisecond},
			sweeper.Deps{Jobs: st, Enqueue: enqueue.New(st, q, log), Log: log})
		w := worker.New(worker.Config{Lease: 5 * time.Second, ShutdownGrace: time.Second, Rates: r}, st, objects, q, set, log)
		wg.Go(func() { sw.Run(runCtx) })
		wg.Go(func() { _ = w.Run(runCtx) })
	}

	const n = 40
	start := time.Now()
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		data := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		st, err := objects.Put(ctx, storage.KeyFor(id), bytes.NewReader(data), int64(len(data)), 1<<20, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if _, _, err := store.Create(ctx, jobs.New{ID: id, Target: "paced", Filename: "f.txt", ContentType: "text/plain",
			Size: st.Size, SHA256: hex.EncodeToString(sum[:]), ObjectKey: st.Key, MaxAttempts: 10}); err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(ctx, "paced", id); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(fake.Documents()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", len(fake.Documents()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	// 43 requests (40 + 3 answered 429) at 20/s after a burst of 2, the
	// rate halved by the 429s: at least 2 s.
	if took < 2*time.Second {
		t.Fatalf("%d deliveries in %s: faster than the shared rate allows", n, took)
	}
	ts.mu.Lock()
	at := append([]time.Time(nil), ts.at...)
	ts.mu.Unlock()
	for _, a := range at {
		in := 0
		for _, b := range at {
			if !b.Before(a) && b.Sub(a) < time.Second {
				in++
			}
		}
		if in > 20+2+2 {
			t.Fatalf("%d requests within one second across two processes; rate is 20/s, burst 2", in)
		}
	}
	cur, err := rs.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := cur["paced"]; st.Rate >= 20 || st.Lowered.IsZero() || st.MaxRate != 20 {
		t.Fatalf("rate state after 429s: %+v; want it lowered below 20", st)
	}
}
