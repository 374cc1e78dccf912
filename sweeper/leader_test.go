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
	gone := func() bool {
		r, err := objects.Open(ctx, storage.KeyFor(orphan))
		if err == nil {
			r.Close()
		}
		return errors.Is(err, storage.ErrNotFound)
	}
	// run runs a sweeper until done says so or d has passed.
	run := func(l leader, d time.Duration, done func() bool) {
		// Any age counts as abandoned: the orphan is old enough at once, so
		// only the election decides.
		sw := sweeper.New(sweeper.Config{Interval: 10 * time.Millisecond, AbandonedAfter: time.Nanosecond, Leader: l},
			sweeper.Deps{Jobs: store, Enqueue: enq, Objects: objects, Log: log})
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		go func() {
			defer cancel()
			for rctx.Err() == nil && !done() {
				select {
				case <-rctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		sw.Run(rctx)
	}
	// Many sweeps (10 ms apart) of a sweeper that is not elected.
	run(false, 300*time.Millisecond, func() bool { return false })
	if gone() {
		t.Fatal("a sweeper that is not elected scanned the bucket")
	}
	run(true, 30*time.Second, gone)
	if !gone() {
		t.Error("the elected sweeper left the orphaned file")
	}
}
