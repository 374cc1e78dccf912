package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// event turns one fsnotify event into hints, watching a new directory (and
// reporting what it already holds) and forgetting a removed or renamed one.
func (w *Watcher) event(ev fsnotify.Event) {
	rel, ok := w.relOf(ev.Name)
	if !ok {
		return
	}
	if rel == "." {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.lostRoot()
		}
		return
	}
	if !w.dirs.has(path.Dir(rel)) {
		// From the watch of a folder dropped since (renamed or removed):
		// fsnotify named it when it read it, by the folder's old path. The
		// folder's new place was listed, or is watched, under its new name.
		return
	}
	now := time.Now()
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// Renamed from, or removed. A directory's watch goes with its whole
		// subtree: the watches under a moved directory would report old paths.
		if w.dirs.has(rel) {
			w.unwatch(rel)
			w.hints.add(rel, now)
			return
		}
	}
	if ev.Has(fsnotify.Create) {
		// Created, or renamed to (the editor's save pattern ends here, with
		// the original's name). A directory may already hold files and
		// directories made before its watch: watchTree lists it after
		// watching it.
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if w.skip(rel, true) {
				return
			}
			w.unwatch(rel) // A directory renamed over this one left a stale watch.
			if err := w.watchTree(rel, true); err != nil {
				w.o.Log.Warn("watch: cannot watch a new folder", "dir", rel, "err", err)
				w.o.OnRescan("new-dir-error")
			}
			return
		}
	}
	if w.skip(rel, w.dirs.has(rel)) {
		return
	}
	w.hints.add(rel, now)
}

// watchTree watches top and every directory under it that is not skipped,
// each before it is listed; with report, every path found is a hint (a new
// directory's content, which no event may have announced). Adding stops at
// the watch limit; the walk goes on when it reports.
func (w *Watcher) watchTree(top string, report bool) error {
	adding, failed := true, false
	now := time.Now()
	err := filepath.WalkDir(w.abs(top), func(p string, d fs.DirEntry, err error) error {
		rel, _ := w.relOf(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // Gone while walking: its removal is an event of its own.
			}
			if rel == top && d == nil {
				return err
			}
			w.o.Log.Warn("watch: cannot list a folder", "dir", rel, "err", err)
			failed = true
			return nil
		}
		if w.skip(rel, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if report {
			w.hints.add(rel, now)
		}
		if !d.IsDir() || !adding {
			return nil
		}
		switch err := w.addWatch(rel); {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC):
			w.limitHit("fs.inotify.max_user_watches", 524288)
			adding = false
			if !report {
				return fs.SkipAll // Polling covers the rest.
			}
		case errors.Is(err, fs.ErrNotExist):
			return fs.SkipDir
		default:
			if rel == top {
				return err
			}
			w.o.Log.Warn("watch: cannot watch a folder", "dir", rel, "err", err)
			failed = true
			return fs.SkipDir
		}
		return nil
	})
	if err == nil && failed && report {
		err = errors.New("part of it could not be watched or listed (logged)")
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.abs(top), err)
	}
	return nil
}

// addWatch watches one directory (fsnotify's Add is not recursive).
func (w *Watcher) addWatch(rel string) error {
	if w.dirs.has(rel) {
		return nil
	}
	dir := w.abs(rel)
	if w.o.AddWatch != nil {
		if err := w.o.AddWatch(dir); err != nil {
			return err
		}
	}
	if err := w.fw.Add(dir); err != nil {
		return err
	}
	w.dirs.add(rel)
	return nil
}

// unwatch drops the watches of rel and every directory under it. fsnotify
// refuses watches the kernel already dropped (a removed directory): fine.
func (w *Watcher) unwatch(rel string) {
	w.dirs.remove(rel, func(gone string) { _ = w.fw.Remove(w.abs(gone)) })
}

// rewatch watches the tree again from scratch, after events were lost: the
// directories made meanwhile get a watch, a directory replaced meanwhile gets
// one on its new inode (fsnotify's Add of a watched path re-resolves it), and
// those gone are forgotten.
func (w *Watcher) rewatch() {
	old := w.dirs
	w.dirs = newDirTree()
	if err := w.watchTree(".", false); err != nil {
		w.o.Log.Warn("watch: cannot watch the folder again", "err", err)
	}
	old.each(func(rel string) {
		if !w.dirs.has(rel) {
			_ = w.fw.Remove(w.abs(rel))
		}
	})
}

// fsnotifyError handles what fsnotify reports besides events.
func (w *Watcher) fsnotifyError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		// Watch what was made meanwhile first, so that nothing changed after
		// the rescan starts goes unseen.
		w.hints.drop()
		w.rewatch()
		w.o.OnRescan("overflow")
		return
	}
	w.o.Log.Warn("watch: fsnotify error", "err", err)
	w.o.OnRescan("error")
}

// limitHit says once that watching is incomplete, how to raise the limit,
// and polls from then on.
func (w *Watcher) limitHit(setting string, suggest int) {
	if w.limited {
		return
	}
	w.limited = true
	current := "unknown"
	if b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(setting, ".", "/")); err == nil {
		current = strings.TrimSpace(string(b))
		if n, err := strconv.Atoi(current); err == nil {
			suggest = max(suggest, 2*n)
		}
	}
	w.o.Log.Warn(fmt.Sprintf("inotify limit reached (%s = %s): not every folder is watched, "+
		"so ferry rescans every %s instead; raise it with `sudo sysctl %s=%d` and keep it "+
		"across reboots with a line `%s=%d` in /etc/sysctl.d/90-ferry-inotify.conf",
		setting, current, w.o.FallbackPoll, setting, suggest, setting, suggest),
		"setting", setting, "current", current, "poll", w.o.FallbackPoll)
	w.o.OnRescan("limit")
}
