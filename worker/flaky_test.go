package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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

// A target that answers 503 to the first two requests of every file (two
// of three requests fail, and every fresh job's first attempt does) still
// gets every file, within a bounded time: its circuit, opened by the first
// attempts, probes with the jobs retried most, closes on their success,
// and stays closed while deliveries keep succeeding. With the breaker of
// one lone probe per cooldown, each probe a fresh job's first attempt,
// nothing was delivered for minutes. FERRY_TEST_FLAKY_FILES sets the
// number of files: 60 by default (about 5 s), 300 is the case of the issue
// (about 12 s; 28 s with the default cooldown).
func TestWorkerKeepsDeliveringToMostlyFailingTarget(t *testing.T) {
	t.Parallel()
	n := 60
	if v, err := strconv.Atoi(os.Getenv("FERRY_TEST_FLAKY_FILES")); err == nil && v > 0 {
		n = v
	}
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	q := testenv.Queue(t)
	q.SetAckWait(5 * time.Second)

	fake := sink.New(sink.Options{FlakyFailures: 2})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ts := buildTargets(t, "targets:\n  - name: flaky\n    kind: http\n    url: "+srv.URL+"/flaky/\n"+
		"    concurrency: 4\n    max_attempts: 10\n    backoff: {initial: 100ms, max: 500ms}\n")
	ids := storeJobs(ctx, t, store, objects, q, "flaky", n, 10)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sw := sweeper.New(sweeper.Config{Interval: 20 * time.Millisecond, Grace: 10 * time.Millisecond},
		sweeper.Deps{Jobs: store, Enqueue: enqueue.New(store, q, log), Log: log})
	w := worker.New(worker.Config{Lease: 5 * time.Second, ShutdownGrace: time.Second,
		Breaker: worker.BreakerConfig{Cooldown: time.Second, MaxCooldown: 5 * time.Second}}, store, objects, q, ts, log)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sw.Run(runCtx) })
	wg.Go(func() { _ = w.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	start := time.Now()
	limit := 20*time.Second + time.Duration(n)*250*time.Millisecond // 35 s for 60 files, 95 s for 300
	waitFor(t, limit, fmt.Sprintf("%d files at a target failing 2 of 3 requests", n), func() bool {
		return len(fake.Documents()) >= n
	})
	t.Logf("%d files delivered in %s (%d requests)", n, time.Since(start).Round(time.Millisecond), len(fake.Requests()))
	// The fake holds a file as soon as it answered; the worker records
	// SUCCESS an instant later.
	var notDone []jobs.Job
	waitFor(t, 30*time.Second, "every job final", func() bool {
		notDone = notDone[:0]
		for _, id := range ids {
			j, err := store.Get(ctx, jobs.AllTenants(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != jobs.StatusSuccess {
				notDone = append(notDone, j)
			}
		}
		return !slices.ContainsFunc(notDone, func(j jobs.Job) bool { return !j.Status.Final() })
	})
	for _, j := range notDone {
		t.Errorf("job %s: %s after %d attempts (%s)", j.ID, j.Status, j.Attempts, j.LastError)
	}
}

// buildTargets builds the targets of a targets file of http targets.
func buildTargets(t *testing.T, yaml string) targets.Set {
	t.Helper()
	cfgs, err := targets.ParseFile(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ts, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// storeJobs stores n small files for target, records their jobs with
// maxAttempts and publishes them; it returns their ids.
func storeJobs(ctx context.Context, t *testing.T, store *jobs.Store, objects *storage.Store, q interface {
	Publish(ctx context.Context, target, id string) error
}, target string, n, maxAttempts int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		data := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		st, err := objects.Put(ctx, storage.KeyFor(id), bytes.NewReader(data), int64(len(data)), 1<<20, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if _, _, err := store.Create(ctx, jobs.New{ID: id, Target: target, Filename: "f.txt", ContentType: "text/plain",
			Size: st.Size, SHA256: hex.EncodeToString(sum[:]), ObjectKey: st.Key, MaxAttempts: maxAttempts}); err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(ctx, target, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}
