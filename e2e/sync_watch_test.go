package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/client/syncer/watch"
)

// syncRun is an engine's Run in the background.
type syncRun struct {
	eng  *syncer.Engine
	stop func()
}

// run starts the engine's Run with o, and the watcher wo (see watcher)
// when not nil; without one, changes are found by rescans every
// o.Interval.
func (e *syncEnv) run(o syncer.Options, wo *watch.Options) syncRun {
	e.t.Helper()
	eng, closeIt := e.engine(o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if wo != nil {
		w := e.watcher(eng, *wo)
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				e.t.Errorf("watcher: %v", err)
			}
		})
		<-w.Ready()
	}
	wg.Go(func() {
		if err := eng.Run(ctx); err != nil {
			e.t.Errorf("run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() { cancel(); wg.Wait(); closeIt() })
	e.t.Cleanup(stop)
	return syncRun{eng: eng, stop: stop}
}

// watcher is the recursive watcher of the source folder wired to eng as
// ferry sync wires it, debounced 200 ms unless wo says otherwise.
func (e *syncEnv) watcher(eng *syncer.Engine, wo watch.Options) *watch.Watcher {
	e.t.Helper()
	if wo.Debounce == 0 {
		wo.Debounce = 200 * time.Millisecond
	}
	wo.Skip = source.Rules{}.Skip
	wo.OnChange = func(rel []string) { eng.Touch(rel...) }
	wo.OnRescan = eng.Rescan
	wo.Log = e.p.log
	w, err := watch.New(e.dir, wo)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// TestSyncWatchSlowWriter: a file written over 20 s, a piece every half
// second, is delivered once, whole.
func TestSyncWatchSlowWriter(t *testing.T) {
	e := newSyncEnv(t)
	e.run(syncer.Options{Interval: time.Hour, MinAge: time.Second}, &watch.Options{})
	p := filepath.Join(e.dir, "slow.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var whole strings.Builder
	for i := range 40 {
		chunk := fmt.Sprintf("piece %02d of the slow file\n", i)
		whole.WriteString(chunk)
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitTarget(map[string][]string{"slow.bin": {whole.String()}}, 30*time.Second)
	time.Sleep(2 * time.Second) // and nothing after it
	e.waitTarget(map[string][]string{"slow.bin": {whole.String()}}, time.Second)
}

// TestSyncWatchEditorSave: an editor's save (write a temporary file,
// rename it over the original) is one new version.
func TestSyncWatchEditorSave(t *testing.T) {
	e := newSyncEnv(t)
	e.write("doc.txt", "draft")
	e.run(syncer.Options{Interval: time.Hour}, &watch.Options{})
	e.waitTarget(map[string][]string{"doc.txt": {"draft"}}, 30*time.Second)
	want := []string{"draft"}
	// A temporary name sync skips, and one it does not know (gedit's):
	// taken only if it stays stable --min-age, which a save does not.
	for _, tmp := range []string{"doc.txt.tmp", ".goutputstream-X1Y2"} {
		e.write(tmp, "saved through "+tmp)
		if err := os.Rename(filepath.Join(e.dir, tmp), filepath.Join(e.dir, "doc.txt")); err != nil {
			t.Fatal(err)
		}
		want = append(want, "saved through "+tmp)
		e.waitTarget(map[string][]string{"doc.txt": want}, 30*time.Second)
	}
	time.Sleep(time.Second)
	e.waitTarget(map[string][]string{"doc.txt": want}, time.Second)
}

// TestSyncWatchFerryDownThenBack: ferry unreachable while files change;
// sync keeps syncRun and keeps the changes pending, then delivers every
// one when ferry is back, none twice.
func TestSyncWatchFerryDownThenBack(t *testing.T) {
	e := newSyncEnv(t)
	e.write("a.txt", "a1")
	r := e.run(syncer.Options{Interval: time.Hour}, &watch.Options{})
	e.waitTarget(map[string][]string{"a.txt": {"a1"}}, 30*time.Second)
	e.down.Store(true)
	e.write("a.txt", "a2")
	e.write("new/b.txt", "b1")
	deadline := time.Now().Add(30 * time.Second)
	for st := r.eng.Status(); !st.Retrying || st.Pending != 2; st = r.eng.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("while ferry is down: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few retries
	e.down.Store(false)
	e.waitTarget(map[string][]string{"a.txt": {"a1", "a2"}, "new/b.txt": {"b1"}}, time.Minute)
	deadline = time.Now().Add(30 * time.Second)
	for st := r.eng.Status(); st.Retrying || st.Pending != 0; st = r.eng.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("after ferry came back: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSyncWatchBurst: 5,000 files written in a second all arrive, once.
func TestSyncWatchBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 5,000 deliveries")
	}
	e := newSyncEnv(t)
	r := e.run(syncer.Options{Interval: time.Hour, Concurrency: 8}, &watch.Options{})
	want := map[string][]string{}
	start := time.Now()
	for i := range 5000 {
		k := fmt.Sprintf("burst/%d/f%04d.txt", i%10, i)
		e.write(k, k)
		want[k] = []string{k}
	}
	t.Logf("written in %s", time.Since(start))
	for st := r.eng.Status(); st.Accepted < 5000; st = r.eng.Status() {
		if time.Since(start) > 8*time.Minute { // ferry's upload path is the bound (slow under -race)
			t.Fatalf("accepted: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("accepted by ferry in %s", time.Since(start))
	e.waitTarget(want, 3*time.Minute) // after they were all accepted
	t.Logf("delivered in %s", time.Since(start))
}
