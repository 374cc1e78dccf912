package enqueue

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

// deferredEnqueuer returns a store of its own and an enqueuer whose
// deferred marks only Flush writes.
func deferredEnqueuer(t *testing.T) (*pgxpool.Pool, *jobs.Store, *Enqueuer) {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	enq := New(s, testenv.Queue(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	enq.markDelay = time.Hour
	return pool, s, enq
}

// createJob records a QUEUED job of target "t" with 3 attempts.
func createJob(t *testing.T, s *jobs.Store) jobs.Job {
	t.Helper()
	j, _, err := s.Create(context.Background(), jobs.New{ID: uuid.Must(uuid.NewV7()).String(), Target: "t", Filename: "f",
		ContentType: "text/plain", Size: 1, SHA256: "x", ObjectKey: "objects/x", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// EnqueueFresh publishes at once and marks later, in one statement: a job
// claimed meanwhile is never marked (its claim changed it), one still
// waiting is.
func TestEnqueueFreshMarksLater(t *testing.T) {
	t.Parallel()
	pool, s, enq := deferredEnqueuer(t)
	ctx := testenv.Context(t)
	waiting, claimed := jobs.RefOf(createJob(t, s)), jobs.RefOf(createJob(t, s))
	refs := []jobs.Ref{waiting, claimed}
	if n := enq.EnqueueFresh(ctx, refs); n != 2 {
		t.Fatalf("published %d, want 2", n)
	}
	if got, _ := s.Unpublished(ctx, 0, 10); len(got) != 2 {
		t.Fatalf("unpublished before the mark: %v, want both", got)
	}
	if _, err := s.Claim(ctx, claimed.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	enq.Flush(ctx)
	var marked []string
	rows, err := pool.Query(ctx, `SELECT id::text FROM jobs WHERE enqueued_at IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		marked = append(marked, id)
	}
	rows.Close()
	if len(marked) != 1 || marked[0] != waiting.ID {
		t.Errorf("marked %v, want only the waiting job %s", marked, waiting.ID)
	}
	enq.mu.Lock()
	defer enq.mu.Unlock()
	if len(enq.deferred) != 0 || enq.timer != nil {
		t.Errorf("after Flush: %d deferred, timer %v", len(enq.deferred), enq.timer)
	}
}

// After a lost stream, the repair publishes again the waiting jobs marked
// before the new stream and the due ones not marked at all (their deferred
// mark may land after the repair went by); not a retry still waiting for its
// time (it has no message by design), nor a job published since. A deferred
// mark records when the job was published, not when it was marked: a mark
// that lands after the new stream was created must not hide a message the
// old stream took.
func TestRepairAfterALostStreamSeesDeferredMarks(t *testing.T) {
	t.Parallel()
	pool, s, enq := deferredEnqueuer(t)
	ctx := testenv.Context(t)
	deferred, unmarked, retry := createJob(t, s), createJob(t, s), createJob(t, s)
	if n := enq.EnqueueFresh(ctx, []jobs.Ref{jobs.RefOf(deferred)}); n != 1 {
		t.Fatalf("published %d", n)
	}
	if _, err := s.Claim(ctx, retry.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, retry.ID, "w/1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry,
		Error: "HTTP 503", NextAttemptAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitForDBTime(t, pool, time.Now()) // strictly after the publish above
	var streamCreated time.Time                // the stream is lost and made again now
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&streamCreated); err != nil {
		t.Fatal(err)
	}
	testenv.WaitForDBTime(t, pool, streamCreated) // the next publish is strictly after it
	later := createJob(t, s)
	if err := s.MarkEnqueued(ctx, jobs.RefOf(later)); err != nil { // published into the new stream
		t.Fatal(err)
	}
	enq.Flush(ctx) // the deferred mark lands after the new stream was made

	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT enqueued_at FROM jobs WHERE id = $1`, deferred.ID).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if !at.Before(streamCreated) {
		t.Errorf("deferred mark says published at %s, after the new stream (%s)", at, streamCreated)
	}
	refs, err := s.PublishedBefore(ctx, streamCreated, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range refs {
		got[r.ID] = true
	}
	if !got[deferred.ID] || !got[unmarked.ID] || got[retry.ID] || got[later.ID] || len(got) != 2 {
		t.Errorf("repair would publish %v; want the deferred %s and the unmarked %s only", got, deferred.ID, unmarked.ID)
	}
}
