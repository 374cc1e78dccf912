package watch

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is how long a test waits for a condition: generous, the machine is
// shared and loaded.
const wait = 30 * time.Second

// recorder keeps what a Watcher said.
type recorder struct {
	mu      sync.Mutex
	changes [][]string
	at      []time.Time // when each change batch arrived
	seen    map[string]int
	rescans []string
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) onChange(paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, paths)
	r.at = append(r.at, time.Now())
	for _, p := range paths {
		r.seen[p]++
	}
}

func (r *recorder) onRescan(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rescans = append(r.rescans, reason)
}

// saw reports whether every path was handed over at least once.
func (r *recorder) saw(paths ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		if r.seen[p] == 0 {
			return false
		}
	}
	return true
}

func (r *recorder) rescanned(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.rescans {
		if s == reason {
			n++
		}
	}
	return n
}

func (r *recorder) batches() ([][]string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes), slices.Clone(r.at)
}

// lockedBuffer is a log sink safe for the Watcher's goroutine and the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run starts a Watcher of root with o (its callbacks set to a recorder)
// and waits until it is ready. stop ends it and waits for Run to return;
// the test's cleanup calls it too.
func run(t *testing.T, root string, o Options) (rec *recorder, w *Watcher, stop func()) {
	t.Helper()
	rec = newRecorder()
	if o.OnChange == nil {
		o.OnChange, o.OnRescan = rec.onChange, rec.onRescan
	}
	if o.Debounce == 0 {
		o.Debounce = 150 * time.Millisecond
	}
	w, err := New(root, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case <-time.After(wait):
		t.Fatal("watcher not ready")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return rec, w, stop
}

// eventually polls cond until it holds or the wait is over.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, root string, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func mv(t *testing.T, root, from, to string) {
	t.Helper()
	if err := os.Rename(filepath.Join(root, from), filepath.Join(root, to)); err != nil {
		t.Fatal(err)
	}
}

func testLogger(buf *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
