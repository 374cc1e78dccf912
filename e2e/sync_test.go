package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// ferry sync (issue 22), end to end: the engine in the test process, the
// real pipeline, and an http target keeping versions (versions: put), so
// that what arrived is one resource per document with its versions.

func TestSyncOnceChanges(t *testing.T) {
	e := newSyncEnv(t)
	e.write("a.txt", "alpha")
	e.write("sub/b.txt", "beta")
	for _, skipped := range []string{"~$a.docx", "x.tmp", ".~lock.a.odt#", "dl.part", ".git/config", "sub/.DS_Store"} {
		e.write(skipped, "not a document")
	}
	s := e.once(syncer.Options{})
	if s.Accepted != 2 || s.Hashed != 2 || !s.Complete() {
		t.Fatalf("first sync: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"alpha"}, "sub/b.txt": {"beta"}}, 30*time.Second)

	// Unchanged: nothing hashed, nothing sent.
	if s = e.once(syncer.Options{}); s.Hashed != 0 || s.Accepted+s.Unchanged != 0 {
		t.Fatalf("unchanged sync: %+v", s)
	}
	// Touched (same content, new mtime): hashed, not sent.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(e.dir, "a.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if s = e.once(syncer.Options{}); s.Hashed != 1 || s.Accepted+s.Unchanged != 0 {
		t.Fatalf("touched: %+v", s)
	}
	// Changed and appended: new versions.
	e.write("sub/b.txt", "beta two")
	appendTo(t, filepath.Join(e.dir, "a.txt"), " and more")
	if s = e.once(syncer.Options{}); s.Accepted != 2 {
		t.Fatalf("changed: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"alpha", "alpha and more"}, "sub/b.txt": {"beta", "beta two"}}, 30*time.Second)

	// Moved to another folder, with --delete: a new document at the new
	// key without hashing again, the old one deleted.
	if err := os.MkdirAll(filepath.Join(e.dir, "moved"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e.dir, "sub/b.txt"), filepath.Join(e.dir, "moved/b.txt")); err != nil {
		t.Fatal(err)
	}
	if s = e.once(syncer.Options{Delete: true, MaxDelete: syncer.DeleteLimit{Percent: 100}}); s.Hashed != 0 || s.Accepted != 1 || s.Deleted != 1 {
		t.Fatalf("moved: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"alpha", "alpha and more"}, "moved/b.txt": {"beta two"}}, 30*time.Second)
}

func appendTo(t *testing.T, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncDeleteGuard: a pass that would delete more than --max-delete of
// the tracked documents deletes nothing and says how to confirm; a source
// that is gone is an error, never a delete.
func TestSyncDeleteGuard(t *testing.T) {
	e := newSyncEnv(t)
	want := map[string][]string{}
	for i := range 20 {
		k := fmt.Sprintf("f%02d.txt", i)
		e.write(k, k)
		want[k] = []string{k}
	}
	if s := e.once(syncer.Options{}); s.Accepted != 20 {
		t.Fatalf("first sync: %+v", s)
	}
	e.waitTarget(want, 30*time.Second)
	for i := range 10 {
		k := fmt.Sprintf("f%02d.txt", i)
		if err := os.Remove(filepath.Join(e.dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	var guard []syncer.Event
	s := e.once(syncer.Options{Delete: true, OnEvent: func(ev syncer.Event) {
		if ev.Kind == syncer.EventGuard {
			guard = append(guard, ev)
		}
	}})
	if s.Deleted != 0 || s.HeldDeletes != 10 || s.Complete() || len(guard) != 1 || guard[0].Count != 10 {
		t.Fatalf("guarded: %+v %+v", s, guard)
	}
	e.waitTarget(want, 5*time.Second)
	limit, _ := syncer.ParseDeleteLimit("10")
	if s = e.once(syncer.Options{Delete: true, MaxDelete: limit}); s.Deleted != 10 || !s.Complete() {
		t.Fatalf("confirmed: %+v", s)
	}
	for i := range 10 {
		delete(want, fmt.Sprintf("f%02d.txt", i))
	}
	e.waitTarget(want, 30*time.Second)

	// The source unmounted: an error, nothing deleted.
	if err := os.Rename(e.dir, e.dir+".away"); err != nil {
		t.Fatal(err)
	}
	eng, closeIt := e.engine(syncer.Options{Delete: true, MaxDelete: syncer.DeleteLimit{Percent: 100}})
	_, err := eng.Once(context.Background())
	closeIt()
	if !errors.Is(err, source.ErrGone) {
		t.Fatalf("source gone: %v", err)
	}
	e.waitTarget(want, 5*time.Second)
}

// TestSyncSeedFromDocuments: with no state (a new machine), sync asks
// ferry for the documents' SHA-256 and sends only what differs.
func TestSyncSeedFromDocuments(t *testing.T) {
	e := newSyncEnv(t)
	e.write("same.txt", "same")
	e.write("other.txt", "v1")
	if s := e.once(syncer.Options{}); s.Accepted != 2 {
		t.Fatalf("first sync: %+v", s)
	}
	e.waitTarget(map[string][]string{"same.txt": {"same"}, "other.txt": {"v1"}}, 30*time.Second)
	e.state = t.TempDir() // the state lost
	e.write("other.txt", "v2")
	s := e.once(syncer.Options{})
	if s.Accepted != 1 || s.Unchanged != 0 || s.Hashed != 2 {
		t.Fatalf("seeded sync: %+v (want only other.txt sent)", s)
	}
	e.waitTarget(map[string][]string{"same.txt": {"same"}, "other.txt": {"v1", "v2"}}, 30*time.Second)
}

// TestSyncFerryUnreachableThenBack: while ferry answers 503, changes stay
// pending in the state and are retried with backoff; none is lost when it
// answers again, and none is sent twice.
func TestSyncFerryUnreachableThenBack(t *testing.T) {
	e := newSyncEnv(t)
	e.write("a.txt", "one")
	e.write("b.txt", "bee")
	e.down.Store(true)
	retrying := make(chan struct{}, 1)
	eng, closeIt := e.engine(syncer.Options{RetryFor: time.Minute, OnEvent: func(ev syncer.Event) {
		if ev.Kind == syncer.EventRetrying {
			retrying <- struct{}{}
		}
	}})
	defer closeIt()
	done := make(chan syncer.Summary, 1)
	go func() { s, _ := eng.Once(context.Background()); done <- s }()
	select {
	case <-retrying:
	case <-time.After(30 * time.Second):
		t.Fatal("no retrying event while ferry is down")
	}
	if st := eng.Status(); st.Pending != 2 || !st.Retrying {
		t.Fatalf("while down: %+v", st)
	}
	e.down.Store(false)
	var s syncer.Summary
	select {
	case s = <-done:
	case <-time.After(time.Minute):
		t.Fatal("sync did not finish after ferry came back")
	}
	if s.Accepted != 2 || !s.Complete() {
		t.Fatalf("after ferry came back: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"one"}, "b.txt": {"bee"}}, 30*time.Second)
}

// TestSyncLargeFileSession: a file of SessionThreshold bytes or more goes
// through an upload session, still as a version of its document.
func TestSyncLargeFileSession(t *testing.T) {
	e := newSyncEnv(t)
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	e.write("big.bin", big)
	o := syncer.Options{SessionThreshold: 1 << 20}
	if s := e.once(o); s.Accepted != 1 || !s.Complete() {
		t.Fatalf("first: %+v", s)
	}
	e.waitTarget(map[string][]string{"big.bin": {big}}, 30*time.Second)
	e.write("big.bin", big+"more")
	if s := e.once(o); s.Accepted != 1 || !s.Complete() {
		t.Fatalf("changed: %+v", s)
	}
	e.waitTarget(map[string][]string{"big.bin": {big, big + "more"}}, 30*time.Second)
}
