package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// New nested folders made and filled at once, again and again: the race
// between a folder's creation and its watch never loses a file.
func TestNewNestedFoldersAtOnce(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rec, _, _ := run(t, root, Options{})
	var want []string
	for i := range 20 {
		top := fmt.Sprintf("n%02d", i)
		deep := top + "/b/c/d"
		mkdirs(t, root, deep)
		for _, dir := range []string{top, top + "/b", top + "/b/c", deep} {
			rel := dir + "/f.txt"
			write(t, root, rel, "x")
			want = append(want, dir, rel)
		}
	}
	eventually(t, "every new folder and file handed over", func() bool { return rec.saw(want...) })

	// The deepest folders are watched: a later write there is seen.
	for i := range 20 {
		write(t, root, fmt.Sprintf("n%02d/b/c/d/later.txt", i), "y")
	}
	eventually(t, "later writes handed over", func() bool {
		for i := range 20 {
			if !rec.saw(fmt.Sprintf("n%02d/b/c/d/later.txt", i)) {
				return false
			}
		}
		return true
	})
}

func TestBurst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxPaths int
		newDir   bool // the files land in a folder made during the burst
	}{
		{name: "5000 files", maxPaths: 0},
		{name: "5000 files in a new folder", newDir: true},
		{name: "5000 files past the bound", maxPaths: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			mkdirs(t, root, "in")
			rec, w, _ := run(t, root, Options{MaxPaths: tc.maxPaths})
			dir := "in"
			if tc.newDir {
				dir = "new/folder"
			}
			start := time.Now()
			want := burst(t, root, dir, 5000)
			t.Logf("5000 files written in %v", time.Since(start).Round(time.Millisecond))
			rescanned := func() bool {
				return rec.rescanned("overflow") > 0 || rec.rescanned("too-many-changes") > 0
			}
			eventually(t, "all 5000 handed over, or a rescan asked", func() bool {
				return rescanned() || rec.saw(want...)
			})
			batches, _ := rec.batches()
			for _, b := range batches {
				if len(b) > w.o.MaxPaths {
					t.Errorf("a batch of %d paths, bound %d", len(b), w.o.MaxPaths)
				}
			}
			if tc.maxPaths > 0 && !rescanned() {
				t.Errorf("5000 changes past a bound of %d, yet no rescan asked", tc.maxPaths)
			}
			t.Logf("batches %d, overflow rescans %d", len(batches), rec.rescanned("overflow"))
		})
	}
}

// burst writes n small files into dir as fast as it can.
func burst(t *testing.T, root, dir string, n int) []string {
	t.Helper()
	mkdirs(t, root, dir)
	want := make([]string, 0, n)
	for i := range n {
		rel := fmt.Sprintf("%s/f%05d.txt", dir, i)
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, rel)
	}
	return want
}

// A real kernel queue overflow: the callback holds the Watcher's goroutine
// while more events arrive than the kernel queues (fs.inotify.
// max_queued_events, read, never changed); "overflow" is asked at once
// after, and the watching goes on.
func TestKernelQueueOverflow(t *testing.T) {
	if testing.Short() {
		t.Skip("writes tens of thousands of files")
	}
	t.Parallel()
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	var queued int
	if _, serr := fmt.Sscan(string(b), &queued); err != nil || serr != nil || queued > 100_000 {
		t.Skipf("max_queued_events %q (%v): too large to overflow here", b, err)
	}
	root := t.TempDir()
	mkdirs(t, root, "in")
	held, release := make(chan struct{}), make(chan struct{})
	var holdOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	rec := newRecorder()
	_, _, _ = run(t, root, Options{OnChange: func(p []string) {
		holdOnce.Do(func() { close(held); <-release })
		rec.onChange(p)
	}, OnRescan: rec.onRescan})
	t.Cleanup(letGo) // Before the Watcher is stopped: cleanups run last first.
	write(t, root, "first.txt", "1")
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatal("no hand-over")
	}
	burst(t, root, "in", queued+eventBuffer) // A create and a write each.
	letGo()
	eventually(t, "overflow said", func() bool { return rec.rescanned("overflow") > 0 })
	write(t, root, "in/after.txt", "1")
	eventually(t, "watching after the overflow", func() bool { return rec.saw("in/after.txt") })
}
