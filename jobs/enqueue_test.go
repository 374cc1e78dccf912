package jobs

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// EnqueueFresh publishes at once and marks later, in one statement: a job
// claimed meanwhile is never marked (its claim changed it), one still
// waiting is.
func TestEnqueueFreshMarksLater(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	s := NewStore(pool)
	ctx := testenv.Context(t)
	enq := NewEnqueuer(s, testenv.Queue(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	enq.markDelay = time.Hour // only Flush marks
	var refs []Ref
	for range 2 {
		j, _, err := s.Create(ctx, New{ID: uuid.Must(uuid.NewV7()).String(), Target: "t", Filename: "f", ContentType: "text/plain",
			Size: 1, SHA256: "x", ObjectKey: "objects/x", MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, RefOf(j))
	}
	waiting, claimed := refs[0], refs[1]
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
