package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/watch"
)

// TestSyncWatchTree: while watching, new nested folders and their files,
// a move between folders, a folder renamed, and deletes (with --delete)
// reach the target; a moved file is not read again.
func TestSyncWatchTree(t *testing.T) {
	e := newSyncEnv(t)
	e.write("top.txt", "top")
	r := e.run(syncer.Options{Interval: time.Hour, Delete: true, MaxDelete: syncer.DeleteLimit{Percent: 100}}, &watch.Options{})
	e.waitTarget(map[string][]string{"top.txt": {"top"}}, 30*time.Second)

	e.write("a/b/c/deep.txt", "deep")
	e.write("a/b/side.txt", "side")
	e.waitTarget(map[string][]string{"top.txt": {"top"}, "a/b/c/deep.txt": {"deep"}, "a/b/side.txt": {"side"}}, 30*time.Second)
	hashed := r.eng.Status().Hashed

	mv := func(from, to string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(e.dir, to)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(e.dir, from), filepath.Join(e.dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	mv("a/b/side.txt", "x/side.txt") // a file to another folder
	mv("a/b/c", "a/renamed")         // a folder
	e.waitTarget(map[string][]string{"top.txt": {"top"}, "a/renamed/deep.txt": {"deep"}, "x/side.txt": {"side"}}, 30*time.Second)
	if h := r.eng.Status().Hashed; h != hashed {
		t.Errorf("moves hashed %d files; the content was known", h-hashed)
	}

	if err := os.RemoveAll(filepath.Join(e.dir, "a")); err != nil {
		t.Fatal(err)
	}
	e.waitTarget(map[string][]string{"top.txt": {"top"}, "x/side.txt": {"side"}}, 30*time.Second)
}

// TestSyncWatchLimit: the watcher hits the inotify watch limit (injected);
// sync says so and carries on by polling: changes still arrive.
func TestSyncWatchLimit(t *testing.T) {
	e := newSyncEnv(t)
	e.write("sub/one.txt", "one")
	limited := make(chan string, 10)
	wo := &watch.Options{FallbackPoll: 300 * time.Millisecond, AddWatch: func(dir string) error {
		if filepath.Base(dir) == "sub" {
			return fmt.Errorf("inotify_add_watch %s: %w", dir, syscall.ENOSPC)
		}
		return nil
	}}
	e.run(syncer.Options{Interval: time.Hour, OnEvent: func(ev syncer.Event) {
		if ev.Kind == syncer.EventRescan {
			select {
			case limited <- ev.Kind:
			default:
			}
		}
	}}, wo)
	e.waitTarget(map[string][]string{"sub/one.txt": {"one"}}, 30*time.Second)
	e.write("sub/two.txt", "two") // in the folder that has no watch
	e.waitTarget(map[string][]string{"sub/one.txt": {"one"}, "sub/two.txt": {"two"}}, 30*time.Second)
}

// TestSyncWatchLatency: with the defaults (2 s debounce, 2 s --min-age),
// a change at idle is accepted by ferry soon after the debounce: the
// watcher's quiet period counts as the wait for stability.
func TestSyncWatchLatency(t *testing.T) {
	e := newSyncEnv(t)
	e.write("idle.txt", "v1")
	r := e.run(syncer.Options{Interval: time.Hour, MinAge: syncer.MinAgeDefault}, &watch.Options{Debounce: watch.DebounceDefault})
	e.waitTarget(map[string][]string{"idle.txt": {"v1"}}, 30*time.Second)
	before := r.eng.Status().Accepted
	start := time.Now()
	e.write("idle.txt", "v2")
	for r.eng.Status().Accepted == before {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the change was not accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("a change at idle accepted %s after it was written (debounce %s)", took.Round(time.Millisecond), watch.DebounceDefault)
	if took > watch.DebounceDefault+4*time.Second { // + 1 s is the goal; slack for a loaded machine
		t.Errorf("accepted after %s", took)
	}
}
