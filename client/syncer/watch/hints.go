package watch

import (
	"slices"
	"time"
)

// hintSet coalesces the paths seen changing until they are due: Debounce
// after the last one, or Deadline after the first one, whichever is sooner.
// It holds at most max paths; past that it holds none and remembers only
// that there were too many.
type hintSet struct {
	debounce, deadline time.Duration
	max                int

	paths       map[string]struct{}
	tooMany     bool
	first, last time.Time // of the pending batch; first.IsZero(): none
	timer       *time.Timer
	armed       bool
}

func newHintSet(o Options) *hintSet {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &hintSet{
		debounce: o.Debounce, deadline: o.Deadline, max: o.MaxPaths,
		paths: make(map[string]struct{}), timer: t,
	}
}

// C fires when the pending batch may be due; take says whether it is.
func (h *hintSet) C() <-chan time.Time { return h.timer.C }

func (h *hintSet) stop() { h.timer.Stop() }

// add notes that rel may have changed at now.
func (h *hintSet) add(rel string, now time.Time) {
	if h.first.IsZero() {
		h.first = now
	}
	h.last = now
	if !h.tooMany {
		h.paths[rel] = struct{}{}
		if len(h.paths) > h.max {
			h.tooMany = true
			h.paths = make(map[string]struct{})
		}
	}
	if !h.armed {
		// Re-armed lazily in take: a burst of events costs no timer resets.
		h.timer.Reset(h.debounce)
		h.armed = true
	}
}

// drop forgets the pending batch (a full rescan covers it).
func (h *hintSet) drop() {
	h.paths = make(map[string]struct{})
	h.tooMany = false
	h.first, h.last = time.Time{}, time.Time{}
	h.timer.Stop()
	h.armed = false
}

// take returns the pending batch if it is due at now (sorted paths, or
// tooMany), else re-arms the timer for when it will be.
func (h *hintSet) take(now time.Time) (paths []string, tooMany, due bool) {
	h.armed = false
	if h.first.IsZero() {
		return nil, false, false
	}
	at := h.last.Add(h.debounce)
	if deadline := h.first.Add(h.deadline); deadline.Before(at) {
		at = deadline
	}
	if wait := at.Sub(now); wait > 0 {
		h.timer.Reset(wait)
		h.armed = true
		return nil, false, false
	}
	tooMany = h.tooMany
	if !tooMany {
		paths = make([]string, 0, len(h.paths))
		for p := range h.paths {
			paths = append(paths, p)
		}
		slices.Sort(paths)
	}
	h.drop()
	return paths, tooMany, true
}
