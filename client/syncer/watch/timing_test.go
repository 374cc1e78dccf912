package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
)

// One write: handed over no sooner than Debounce after it, in one batch.
func TestDebounce(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	const debounce = 400 * time.Millisecond
	rec, _, _ := run(t, root, Options{Debounce: debounce})
	start := time.Now()
	write(t, root, "a.txt", "1")
	write(t, root, "b.txt", "1")
	eventually(t, "handed over", func() bool { return rec.saw("a.txt", "b.txt") })
	batches, at := rec.batches()
	if waited := at[0].Sub(start); waited < debounce {
		t.Errorf("handed over after %v, before the debounce of %v", waited, debounce)
	}
	if len(batches) != 1 || !slices.Equal(batches[0], []string{"a.txt", "b.txt"}) {
		t.Errorf("batches %q, want one [a.txt b.txt]", batches)
	}
}

// Constant writes never leave a quiet Debounce: the Deadline hands the
// paths over anyway, at most once per Deadline.
func TestDeadlineUnderConstantWrites(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	const deadline = 600 * time.Millisecond
	rec, _, _ := run(t, root, Options{Debounce: 300 * time.Millisecond, Deadline: deadline})
	f, err := os.Create(filepath.Join(root, "slow.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stopAt := time.Now().Add(wait)
	for n := 0; ; n++ {
		if _, err := fmt.Fprintf(f, "line %d\n", n); err != nil {
			t.Fatal(err)
		}
		if batches, _ := rec.batches(); len(batches) >= 3 {
			break
		}
		if time.Now().After(stopAt) {
			t.Fatal("no hand-over under constant writes")
		}
		time.Sleep(20 * time.Millisecond) // Far below the debounce.
	}
	batches, at := rec.batches()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < deadline-10*time.Millisecond {
			t.Errorf("hand-overs %v apart, deadline %v", gap, deadline)
		}
	}
	for _, b := range batches {
		if !slices.Equal(b, []string{"slow.log"}) {
			t.Errorf("batch %q, want [slow.log]", b)
		}
	}
}

// Run ends at once when its context does, and leaves no goroutine behind
// (TestMain checks the whole package too).
func TestRunEndsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	full := func(string) error { return fmt.Errorf("full: %w", syscall.ENOSPC) }
	for _, o := range []Options{{}, {Poll: time.Millisecond}, {FallbackPoll: time.Millisecond, AddWatch: full}} {
		root := t.TempDir()
		mkdirs(t, root, "a/b")
		w, err := New(root, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		write(t, root, "a/b/f.txt", "busy") // Pending hints at cancel.
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not end")
		}
	}
}

// An overflow (events lost): folders made meanwhile get their watch before
// the "overflow" rescan is asked, pending hints are dropped (the rescan
// covers them), gone folders are forgotten.
func TestOverflowRewatches(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mkdirs(t, root, "gone/sub", "kept")
	rec := newRecorder()
	w, err := New(root, Options{OnChange: rec.onChange, OnRescan: rec.onRescan})
	if err != nil {
		t.Fatal(err)
	}
	// Driven by hand, without Run's loop: the events stay unread, as lost.
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	defer w.fw.Close()
	w.hints.add("pending.txt", time.Now())
	mkdirs(t, root, "made/while/lost")
	if err := os.RemoveAll(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	w.fsnotifyError(fmt.Errorf("read: %w", fsnotify.ErrEventOverflow))
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range w.dirs.kids {
			yield(k)
		}
	})
	if want := []string{".", "kept", "made", "made/while", "made/while/lost"}; !slices.Equal(got, want) {
		t.Errorf("watched %q, want %q", got, want)
	}
	if rec.rescanned("overflow") != 1 || len(w.hints.paths) != 0 {
		t.Errorf("rescans %q, pending %d", rec.rescans, len(w.hints.paths))
	}
}
