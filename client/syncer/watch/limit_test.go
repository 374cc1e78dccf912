package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The inotify watch limit, injected (the machine's sysctls stay as they
// are): one warning naming the setting and how to raise it, one "limit"
// rescan, then polling rescans keep coming, and the folders already
// watched keep reporting.
func TestWatchLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit int  // watches that fit
		late  bool // the limit is hit by folders made while watching
	}{
		{name: "at start, root included", limit: 0},
		{name: "at start, in the tree", limit: 2},
		{name: "while watching", limit: 1, late: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			root := filepath.Join(parent, "src")
			mkdirs(t, parent, "src")
			if !tc.late {
				mkdirs(t, root, "a/b", "c")
			}
			var added atomic.Int32
			logs := &lockedBuffer{}
			rec, _, _ := run(t, root, Options{
				FallbackPoll: 100 * time.Millisecond,
				Log:          testLogger(logs),
				AddWatch: func(string) error {
					if int(added.Add(1)) > tc.limit {
						return syscall.ENOSPC
					}
					return nil
				},
			})
			if tc.late {
				// A folder moved in is listed even without its watch (what
				// is written in it later only a polling rescan finds).
				write(t, parent, "x/y/f.txt", "1")
				if err := os.Rename(filepath.Join(parent, "x"), filepath.Join(root, "x")); err != nil {
					t.Fatal(err)
				}
				eventually(t, "new folder's file handed over", func() bool { return rec.saw("x/y/f.txt") })
				mkdirs(t, root, "z") // Another refused watch: no second warning.
			}
			eventually(t, "limit said", func() bool { return rec.rescanned("limit") == 1 })
			eventually(t, "polling rescans keep coming", func() bool { return rec.rescanned("poll") >= 5 })
			if tc.limit > 0 {
				write(t, root, "root.txt", "1")
				eventually(t, "the root still watched", func() bool { return rec.saw("root.txt") })
			}
			if n := rec.rescanned("limit"); n != 1 {
				t.Errorf("limit said %d times", n)
			}
			out := logs.String()
			if n := strings.Count(out, "fs.inotify.max_user_watches"); n == 0 {
				t.Errorf("no warning names fs.inotify.max_user_watches:\n%s", out)
			}
			if n := strings.Count(out, "level=WARN"); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, out)
			}
			t.Log(out)
			if !strings.Contains(out, "sudo sysctl fs.inotify.max_user_watches=") ||
				!strings.Contains(out, "/etc/sysctl.d/") {
				t.Errorf("the warning does not say how to raise the limit:\n%s", out)
			}
		})
	}
}

// Poll > 0: no fsnotify at all, a rescan every Poll, no change hints.
func TestPollMode(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rec, w, stop := run(t, root, Options{Poll: 50 * time.Millisecond})
	write(t, root, "f.txt", "1")
	eventually(t, "polling rescans", func() bool { return rec.rescanned("poll") >= 5 })
	stop()
	if w.fw != nil || w.dirs.len() != 0 {
		t.Errorf("polling mode watched %d folders", w.dirs.len())
	}
	if batches, _ := rec.batches(); len(batches) != 0 {
		t.Errorf("change hints while polling: %q", batches)
	}
}

// The root removed (an unmounted drive): a "root-gone" rescan, polling,
// and watching again once it is back.
func TestRootGoneAndBack(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "src")
	mkdirs(t, parent, "src/sub")
	rec, _, _ := run(t, root, Options{FallbackPoll: 100 * time.Millisecond})
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	eventually(t, "root-gone said", func() bool { return rec.rescanned("root-gone") == 1 })
	eventually(t, "polling", func() bool { return rec.rescanned("poll") >= 2 })
	mkdirs(t, parent, "src/sub")
	eventually(t, "rewatch said", func() bool { return rec.rescanned("rewatch") == 1 })
	write(t, root, "sub/back.txt", "1")
	eventually(t, "watching again", func() bool { return rec.saw("sub/back.txt") })
	polls := rec.rescanned("poll")
	time.Sleep(500 * time.Millisecond)
	if n := rec.rescanned("poll"); n > polls+1 {
		t.Errorf("still polling once watching again: %d polls more", n-polls)
	}
}

// The root's watches dropped without an event (as fsnotify does when the
// filesystem is unmounted; simulated by removing the watch behind the
// Watcher's back): the check notices, and watches the tree again.
func TestRootWatchDroppedSilently(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mkdirs(t, root, "sub")
	rec, w, _ := run(t, root, Options{FallbackPoll: 100 * time.Millisecond})
	if err := w.fw.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := w.fw.Remove(filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rewatch said", func() bool { return rec.rescanned("rewatch") == 1 })
	write(t, root, "sub/f.txt", "1")
	eventually(t, "watching again", func() bool { return rec.saw("sub/f.txt") })
	if n := rec.rescanned("poll"); n != 0 {
		t.Errorf("%d polls while watching", n)
	}
}

func TestNewAndRunErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "file", "1")
	for _, tc := range []struct {
		name string
		root string
		o    Options
	}{
		{"missing root", filepath.Join(root, "nope"), Options{}},
		{"root is a file", filepath.Join(root, "file"), Options{}},
		{"negative debounce", root, Options{Debounce: -1}},
		{"negative bound", root, Options{MaxPaths: -1}},
	} {
		if _, err := New(tc.root, tc.o); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}

	w, err := New(root, Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := w.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}

	gone := filepath.Join(root, "gone")
	mkdirs(t, root, "gone")
	w, err = New(gone, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run of a removed root succeeded")
	}
}
