package sweeper

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
)

const target = "t"

type env struct {
	pool  *pgxpool.Pool
	jobs  *jobs.Store
	queue *queue.Queue
	sw    *Sweeper
}

func newEnv(t *testing.T, q *queue.Queue, objects ObjectCleaner, cfg Config) *env {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	if q == nil {
		q = testenv.Queue(t)
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Millisecond
	}
	e := &env{pool: pool, jobs: jobs.NewStore(pool), queue: q}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.sw = New(cfg, Deps{Jobs: e.jobs, Enqueue: enqueue.New(e.jobs, q, log), Stream: q, Objects: objects, Log: log})
	return e
}

func (e *env) newJob(t *testing.T, maxAttempts int) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	_, _, err := e.jobs.Create(context.Background(), jobs.New{ID: id, Target: target, Filename: "f.txt",
		ContentType: "text/plain", Size: 1, SHA256: "x", ObjectKey: storage.KeyFor(id), MaxAttempts: maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// age makes a job a minute old, past any grace.
func (e *env) age(t *testing.T, id string) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `UPDATE jobs SET created_at = created_at - interval '1 minute',
		updated_at = updated_at - interval '1 minute' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

// queued takes every message of the target's queue and returns their job
// ids, sorted.
func queued(t *testing.T, q *queue.Queue) []string {
	t.Helper()
	ctx := testenv.Context(t)
	cons, err := q.Consumer(ctx, target, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			_, id, _ := queue.ParseSubject(msg.Subject())
			ids = append(ids, id)
			_ = msg.Ack()
		}
		if n == 0 {
			slices.Sort(ids)
			return ids
		}
	}
}

func (e *env) status(t *testing.T, id string) jobs.Job {
	t.Helper()
	j, err := e.jobs.Get(context.Background(), jobs.AllTenants(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A job the API recorded but could not publish is published by the sweeper
// once its grace is over, and only once.
func TestSweepPublishesWhatTheAPICouldNot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{Grace: 300 * time.Millisecond})
	ctx := testenv.Context(t)
	// The first sweep meets the stream and repairs what it may have lost
	// (due jobs not marked published, whatever their age): none yet.
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("first sweep published %d jobs", n)
	}
	id := e.newJob(t, 3)
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("published %d jobs within their grace", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.sw.Sweep(ctx) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the unpublished job was never published")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Errorf("published %d more on the next sweep", n)
	}
	if got := queued(t, e.queue); !slices.Equal(got, []string{id}) {
		t.Errorf("queue holds %v, want [%s]", got, id)
	}
}

// A job whose worker died mid-delivery comes back: its attempt is
// ABANDONED, and it is RETRYING with a message, or FAILED when that was
// its last attempt.
func TestSweepRecoversJobsOfDeadWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{Grace: time.Hour})
	ctx := testenv.Context(t)
	again, last := e.newJob(t, 3), e.newJob(t, 1)
	for _, id := range []string{again, last} {
		if _, err := e.jobs.Claim(ctx, id, "dead-worker/1", 800*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("recovered %d jobs whose lease runs", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.status(t, last).Status == jobs.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("the expired lease was never recovered")
		}
		time.Sleep(50 * time.Millisecond)
		e.sw.Sweep(ctx)
	}
	if j := e.status(t, again); j.Status != jobs.StatusRetrying || j.LeaseOwner != "" {
		t.Errorf("job with attempts left: %s owned by %q, want RETRYING, no owner", j.Status, j.LeaseOwner)
	}
	if j := e.status(t, last); j.Status != jobs.StatusFailed || j.LastError == "" {
		t.Errorf("job on its last attempt: %s (%q), want FAILED with a reason", j.Status, j.LastError)
	}
	for _, id := range []string{again, last} {
		as, err := e.jobs.Attempts(ctx, jobs.AllTenants(), id)
		if err != nil || len(as) != 1 || as[0].Outcome != jobs.OutcomeAbandoned {
			t.Errorf("attempts of %s: %+v %v, want one ABANDONED", id, as, err)
		}
	}
	if got := queued(t, e.queue); !slices.Equal(got, []string{again}) {
		t.Errorf("queue holds %v, want only the job to retry, %s", got, again)
	}
}

// While NATS is down the sweeper publishes nothing and loses nothing; once
// NATS is back (same store, same port) it publishes what waited.
func TestSweepWhileQueueIsDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	port, _ := strconv.Atoi(u.Port())
	q, err := queue.Connect(srv.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	ctx := testenv.Context(t)
	if err := q.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, q, nil, Config{})
	id := e.newJob(t, 3)
	e.age(t, id)

	srv.Shutdown()
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("published %d jobs with NATS down", n)
	}
	var enqueued *time.Time
	if err := e.pool.QueryRow(ctx, `SELECT enqueued_at FROM jobs WHERE id = $1`, id).Scan(&enqueued); err != nil {
		t.Fatal(err)
	}
	if enqueued != nil {
		t.Fatal("a job whose publish failed is marked published")
	}

	srv, err = natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	deadline := time.Now().Add(15 * time.Second)
	for e.sw.Sweep(ctx) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job was not published after NATS came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := queued(t, q); !slices.Equal(got, []string{id}) {
		t.Errorf("queue holds %v, want [%s]", got, id)
	}
}

// The API publishes a new job and records that it did; a fast worker may
// take the message and schedule a retry in between. The late record must
// not hide the retry from the sweeper, or the job waits for StaleDefault.
func TestSweepPublishesRetryDespiteLateMarkEnqueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{})
	ctx := testenv.Context(t)
	id := e.newJob(t, 3)
	published := e.status(t, id)
	if err := e.queue.Publish(ctx, target, id); err != nil { // the API's publish
		t.Fatal(err)
	}
	if got := queued(t, e.queue); !slices.Equal(got, []string{id}) { // a worker takes it
		t.Fatalf("queue holds %v", got)
	}
	if _, err := e.jobs.Claim(ctx, id, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Finish(ctx, id, "w/1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry,
		Error: "HTTP 503", NextAttemptAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.jobs.MarkEnqueued(ctx, jobs.Ref{ID: id, Target: target, Version: published.UpdatedAt}); err != nil { // the API, late
		t.Fatal(err)
	}
	e.age(t, id)
	e.sw.Sweep(ctx)
	if got := queued(t, e.queue); !slices.Equal(got, []string{id}) {
		t.Errorf("queue holds %v after a sweep; the retry of %s was never published", got, id)
	}
}

// Delivered files are removed after the retention; job rows and attempts
// stay. Zero retention keeps files.
func TestCleanRemovesDeliveredFilesAfterRetention(t *testing.T) {
	t.Parallel()
	objects := testenv.Storage(t)
	ctx := testenv.Context(t)
	for _, keep := range []bool{false, true} {
		retention := time.Hour
		if keep {
			retention = 0
		}
		e := newEnv(t, nil, objects, Config{Retention: retention})
		old, recent := e.newJob(t, 3), e.newJob(t, 3)
		for _, id := range []string{old, recent} {
			if _, err := objects.Put(ctx, storage.KeyFor(id), bytes.NewReader([]byte("x")), 1, 10, "text/plain"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.jobs.Claim(ctx, id, "w/1", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := e.jobs.Finish(ctx, id, "w/1", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.pool.Exec(ctx, `UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = $1`, old); err != nil {
			t.Fatal(err)
		}
		e.sw.clean(ctx)
		_, errOld := objects.Open(ctx, storage.KeyFor(old))
		_, errRecent := objects.Open(ctx, storage.KeyFor(recent))
		if errRecent != nil {
			t.Errorf("retention %s: a file delivered just now is gone: %v", retention, errRecent)
		}
		if keep && errOld != nil {
			t.Errorf("retention 0 removed a delivered file: %v", errOld)
		}
		if !keep && !errors.Is(errOld, storage.ErrNotFound) {
			t.Errorf("a file delivered 2h ago with 1h retention is still stored (%v)", errOld)
		}
		if j := e.status(t, old); j.Status != jobs.StatusSuccess {
			t.Errorf("job row after cleaning: %s", j.Status)
		}
		if as, err := e.jobs.Attempts(ctx, jobs.AllTenants(), old); err != nil || len(as) != 1 {
			t.Errorf("attempts after cleaning: %v %v", as, err)
		}
	}
}

// publishedBacklog records n jobs, publishes them through the enqueuer
// and makes them an hour old (created, published, due), as a backlog
// behind a slow target is. The sweeper has seen the stream before.
func (e *env) publishedBacklog(t *testing.T, n int) []string {
	t.Helper()
	ctx := testenv.Context(t)
	e.sw.Sweep(ctx)
	var ids []string
	var refs []jobs.Ref
	for range n {
		id := e.newJob(t, 3)
		ids = append(ids, id)
		refs = append(refs, jobs.RefOf(e.status(t, id)))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if got := enqueue.New(e.jobs, e.queue, log).Enqueue(ctx, refs); got != n {
		t.Fatalf("published %d of %d", got, n)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE jobs SET created_at = created_at - interval '1 hour',
		updated_at = updated_at - interval '1 hour', enqueued_at = enqueued_at - interval '1 hour',
		next_attempt_at = next_attempt_at - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	return ids
}

// enqueuedAt returns every job's enqueued_at.
func (e *env) enqueuedAt(t *testing.T) map[string]time.Time {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT id::text, enqueued_at FROM jobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		out[id] = at
	}
	return out
}

// A healthy backlog (every message in the stream) costs no publish and no
// job-row write, however long it has waited. Before, every job waiting
// longer than 10 minutes was published again and its row rewritten, every
// 10 minutes.
func TestHealthyBacklogCostsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{})
	ctx := testenv.Context(t)
	e.publishedBacklog(t, 300)
	before := e.enqueuedAt(t)
	for range 3 {
		if n := e.sw.Sweep(ctx); n != 0 {
			t.Fatalf("a sweep of a healthy backlog published %d jobs", n)
		}
	}
	after := e.enqueuedAt(t)
	for id, at := range before {
		if !after[id].Equal(at) {
			t.Fatalf("job %s rewritten by the sweep of a healthy backlog", id)
		}
	}
	if n, err := e.queue.Pending(ctx); err != nil || n != 300 {
		t.Fatalf("stream holds %d (%v), want 300", n, err)
	}
}

// A deleted stream is created again and every waiting job published again
// into it; /readyz's check says the stream is missing meanwhile.
func TestSweepRebuildsLostStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: rebuilding a lost stream takes ~15 s (make test runs it)")
	}
	t.Parallel()
	e := newEnv(t, nil, nil, Config{})
	ctx := testenv.Context(t)
	ids := e.publishedBacklog(t, 1500) // more than one batch
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("published %d with the stream intact", n)
	}
	if err := e.queue.DeleteStream(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.queue.Ping(ctx); !errors.Is(err, queue.ErrStreamMissing) {
		t.Fatalf("Ping with the stream gone: %v, want ErrStreamMissing", err)
	}
	if n := e.sw.Sweep(ctx); n != len(ids) {
		t.Fatalf("published %d after the stream was lost, want %d", n, len(ids))
	}
	if err := e.queue.Ping(ctx); err != nil {
		t.Fatalf("Ping after the rebuild: %v", err)
	}
	got := queued(t, e.queue)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("stream holds %d jobs, want the %d waiting", len(got), len(ids))
	}
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("published %d more once repaired", n)
	}
}
