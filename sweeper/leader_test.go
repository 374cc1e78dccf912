package sweeper_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/sweeper"
)

// leader is a fixed answer to "is this process elected?".
type leader bool

func (l leader) Leading() bool { return bool(l) }

// TestOnlyTheLeaderScansTheBucket runs two sweepers on one installation:
// the one that is not elected leaves an orphaned file alone, the elected
// one removes it.
func TestOnlyTheLeaderScansTheBucket(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	ctx := testenv.Context(t)
	orphan := uuid.Must(uuid.NewV7()).String()
	if _, err := objects.Put(ctx, storage.KeyFor(orphan), bytes.NewReader([]byte("x")), 1, 10, "text/plain"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	enq := enqueue.New(store, testenv.Queue(t), log)
	run := func(l leader) {
		// Any age counts as abandoned: the orphan is old enough at once, so
		// only the election decides.
		sw := sweeper.New(sweeper.Config{Interval: 10 * time.Millisecond, AbandonedAfter: time.Nanosecond, Leader: l},
			sweeper.Deps{Jobs: store, Enqueue: enq, Objects: objects, Log: log})
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		sw.Run(rctx)
	}
	run(false)
	r, err := objects.Open(ctx, storage.KeyFor(orphan))
	if err != nil {
		t.Fatalf("a sweeper that is not elected scanned the bucket: %v", err)
	}
	r.Close()
	run(true)
	if _, err := objects.Open(ctx, storage.KeyFor(orphan)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the elected sweeper left the orphaned file (%v)", err)
	}
}
