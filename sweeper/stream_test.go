package sweeper

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// A stream purged in place (its messages dropped, the stream kept) is
// seen at the next sweep: every waiting job is published again and
// Describe says so meanwhile. Before, nothing noticed (the stream's
// creation time did not change) and the jobs stayed QUEUED for good, even
// across a restart.
func TestSweepRepublishesAfterPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{})
	ctx := testenv.Context(t)
	ids := e.publishedBacklog(t, 1500) // more than one batch
	if n := e.sw.Sweep(ctx); n != 0 {
		t.Fatalf("published %d with the stream intact", n)
	}
	if err := e.queue.PurgeStream(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.sw.Sweep(ctx); n != len(ids) {
		t.Fatalf("published %d after the stream was purged, want %d", n, len(ids))
	}
	if d, _ := e.sw.Describe(ctx); !strings.Contains(d, "purged") || !strings.Contains(d, "1500") {
		t.Errorf("Describe after the repair: %q", d)
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

// A purge while ferry is down (or a repair cut short by a crash) is seen
// by a sweeper that starts afterwards; and a second process's sweeper,
// which finds the stream marked again by the first, repairs too (the
// first may die before it is done).
func TestSweepAfterPurgeSeenAtStartAndByOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, Config{})
	ctx := testenv.Context(t)
	ids := e.publishedBacklog(t, 50)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	other := New(Config{Grace: e.sw.cfg.Grace}, Deps{Jobs: e.jobs, Enqueue: enqueue.New(e.jobs, e.queue, log), Stream: e.queue, Log: log})
	// Its first sweep republishes the backlog, made to look an hour old
	// (older than the stream), as any sweeper starting does.
	other.Sweep(ctx)
	if n := other.Sweep(ctx); n != 0 {
		t.Fatalf("a second sweeper published %d with the stream intact", n)
	}
	if err := e.queue.PurgeStream(ctx); err != nil {
		t.Fatal(err)
	}
	// The first sweeper (started after the purge: a restart) repairs.
	restarted := New(Config{Grace: e.sw.cfg.Grace}, Deps{Jobs: e.jobs, Enqueue: enqueue.New(e.jobs, e.queue, log), Stream: e.queue, Log: log})
	if n := restarted.Sweep(ctx); n != len(ids) {
		t.Fatalf("a sweeper started after the purge published %d, want %d", n, len(ids))
	}
	// The other sees the new mark and repairs as well (harmless copies).
	if n := other.Sweep(ctx); n != len(ids) {
		t.Fatalf("the other sweeper published %d after the new mark, want %d", n, len(ids))
	}
	if n := other.Sweep(ctx); n != 0 {
		t.Fatalf("published %d more once repaired", n)
	}
	if got := queued(t, e.queue); len(got) != len(ids) {
		t.Fatalf("stream holds %d jobs, want %d", len(got), len(ids))
	}
}
