package watch

import (
	"os"
	"slices"
)

// tick runs every FallbackPoll (every Poll when polling is asked for): it
// checks the root, and asks for a rescan while watching is incomplete.
func (w *Watcher) tick() {
	if w.fw != nil {
		w.checkRoot()
	}
	if w.o.Poll > 0 || w.limited || w.rootGone {
		w.o.OnRescan("poll")
	}
}

// lostRoot: the root was removed or moved away. It is polled until it is
// back, then watched again (an unmounted drive coming back).
func (w *Watcher) lostRoot() {
	w.unwatch(".")
	w.hints.drop()
	w.rootGone = true
	w.o.OnRescan("root-gone")
}

// checkRoot notices what no event says: the root gone or back, replaced by
// another directory, or its watch dropped without a word (fsnotify forgets
// the watches of an unmounted filesystem silently; a drive unmounted and
// mounted again between two checks looks the same as before). Then the
// whole tree is watched again and a "rewatch" rescan asked.
func (w *Watcher) checkRoot() {
	fi, err := os.Stat(w.root)
	switch {
	case err != nil || !fi.IsDir():
		if !w.rootGone {
			w.lostRoot()
		}
		return
	case w.rootGone:
		w.rootGone = false
	case os.SameFile(fi, w.rootInfo) && (!w.dirs.has(".") || slices.Contains(w.fw.WatchList(), w.root)):
		return
	}
	w.rootInfo = fi
	w.unwatch(".")
	w.hints.drop()
	w.rewatch()
	w.o.OnRescan("rewatch")
}
