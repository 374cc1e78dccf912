// Package watch tells ferry sync which paths under a local folder may have
// changed, and when it should rescan the whole folder instead.
//
// A Watcher watches every directory of a tree with fsnotify (inotify on
// Linux, which is not recursive: the Watcher adds a watch to each new
// directory as soon as its creation is seen, then lists it, so files made
// before the watch existed are reported too). Events are hints, never the
// authority: they are coalesced into a bounded set of paths and handed to
// OnChange once the tree has been quiet for Debounce (or Deadline after the
// first of them under constant writes). What events cannot tell is said
// through OnRescan: the kernel's queue overflowed, the watch limit was hit
// (the Watcher then warns once and carries on by polling), too many paths
// changed to list them, or polling was asked for (network filesystems,
// where events do not arrive).
//
// Callbacks run on Run's goroutine, one at a time; they must return quickly
// (hand the paths to another goroutine), or events back up in the kernel
// until it reports an overflow. Wired to a sync engine:
//
//	w, err := watch.New(dir, watch.Options{
//		Skip:     skip, // .git/, temporary files, the state folder
//		OnChange: func(rel []string) { engine.Touch(rel...) },
//		OnRescan: engine.Rescan,
//		Log:      log,
//	})
//	...
//	err = w.Run(ctx) // until ctx ends
package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches one directory tree. Make it with New, start it with Run.
type Watcher struct {
	root    string // absolute, cleaned
	o       Options
	started atomic.Bool
	ready   chan struct{}

	// Owned by Run's goroutine.
	fw       *fsnotify.Watcher
	dirs     *dirTree
	hints    *hintSet
	ticker   *time.Ticker // polling, and the root's check
	limited  bool         // the watch limit was hit (and said)
	rootGone bool         // the root was removed or moved away
	rootInfo os.FileInfo  // the root as last watched
}

// New returns a Watcher of the directory root; nothing is watched before Run.
func New(root string, o Options) (*Watcher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch: %s is not a directory", abs)
	}
	o = o.WithDefaults()
	return &Watcher{root: abs, o: o, ready: make(chan struct{}), dirs: newDirTree(), hints: newHintSet(o)}, nil
}

// Ready is closed once Run has its initial watches in place (or polls
// instead, or failed to start): a change made after it is seen.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run watches until ctx ends, then releases the watches and returns nil. It
// returns an error only when watching cannot start; a Watcher runs once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice")
	}
	defer func() {
		w.hints.stop()
		if w.fw != nil {
			_ = w.fw.Close() // Its only error is closing an inotify fd twice.
		}
		if w.ticker != nil {
			w.ticker.Stop()
		}
	}()
	if w.o.Poll > 0 {
		w.ticker = time.NewTicker(w.o.Poll)
	} else if err := w.start(); err != nil {
		close(w.ready)
		return err
	}
	close(w.ready)
	return w.loop(ctx)
}

// start opens fsnotify and watches the whole tree. No inotify instance left
// (fs.inotify.max_user_instances) is a limit like the watch limit.
func (w *Watcher) start() error {
	w.ticker = time.NewTicker(w.o.FallbackPoll)
	fw, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if errors.Is(err, syscall.EMFILE) {
		w.limitHit("fs.inotify.max_user_instances", 1024)
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	w.fw = fw
	if w.rootInfo, err = os.Stat(w.root); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return w.watchTree(".", false)
}

// eventBuffer is fsnotify's channel buffer: the kernel's queue is the main
// buffer; this one only smooths the hand-off while a new directory is listed.
const eventBuffer = 1024

func (w *Watcher) loop(ctx context.Context) error {
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w.fw != nil {
			events, errs = w.fw.Events, w.fw.Errors
		}
		var tick <-chan time.Time
		if w.ticker != nil {
			tick = w.ticker.C
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errors.New("watch: fsnotify stopped")
			}
			w.event(ev)
		case err, ok := <-errs:
			if !ok {
				return errors.New("watch: fsnotify stopped")
			}
			w.fsnotifyError(err)
		case now := <-w.hints.C():
			w.flush(now)
		case <-tick:
			w.tick()
		}
	}
}

// flush hands the coalesced paths over once they are due.
func (w *Watcher) flush(now time.Time) {
	paths, tooMany, due := w.hints.take(now)
	switch {
	case !due:
	case tooMany:
		w.o.OnRescan("too-many-changes")
	case len(paths) > 0:
		w.o.OnChange(paths)
	}
}

// relOf turns an absolute path under the root into a slash-separated
// relative one ("." for the root itself).
func (w *Watcher) relOf(name string) (string, bool) {
	if name == w.root {
		return ".", true
	}
	prefix := w.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	rel, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func (w *Watcher) abs(rel string) string {
	return filepath.Join(w.root, filepath.FromSlash(rel))
}

func (w *Watcher) skip(rel string, isDir bool) bool {
	return rel != "." && w.o.Skip != nil && w.o.Skip(rel, isDir)
}
