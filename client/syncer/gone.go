package syncer

import (
	"fmt"

	"github.com/ferry-relay/ferry/client/syncer/index"
)

// renames finds the new paths that are gone files moved (same inode,
// size and mtime): their content is known, so they are not hashed again.
// It returns the candidates left to settle.
func (e *Engine) renames(l *listing, w *writer) []cand {
	byInode := map[uint64]index.Record{}
	for _, g := range l.gone {
		if g.rec.Inode != 0 && g.rec.SHA256 != "" && g.rec.Size >= 0 {
			byInode[g.rec.Inode] = g.rec
		}
	}
	if len(byInode) == 0 {
		return l.cands
	}
	left := l.cands[:0]
	for _, c := range l.cands {
		old, ok := byInode[c.e.Inode]
		if !ok || c.e.Inode == 0 || old.Size != c.e.Size || old.MTime != c.e.ModTime.UnixNano() {
			left = append(left, c)
			continue
		}
		delete(byInode, c.e.Inode)
		r := e.decide(c, c.e, old.SHA256)
		w.put(c.e.Path, r)
		e.log.Debug("renamed: content known", "path", c.e.Path)
	}
	return left
}

// applyGone forgets the records of files gone, or, with Delete, records
// their deletes as pending, unless there are more than MaxDelete allows.
func (e *Engine) applyGone(l *listing, w *writer) {
	var dels []gone
	for _, g := range l.gone {
		switch {
		case g.rec.Pending == index.OpDelete:
			// recorded already
		case g.rec.Seeded, g.rec.Accepted == "" && g.rec.Pending == "":
			w.del(g.path) // never sent from here: nothing to delete
		case !e.o.Delete || e.noDeletes():
			w.del(g.path)
		default:
			dels = append(dels, g)
		}
	}
	if len(dels) == 0 {
		e.heldDelete = 0
		return
	}
	if l.incomplete {
		return
	}
	tracked := int(e.c.tracked.Load())
	if !e.o.MaxDelete.Allows(len(dels), tracked) {
		e.holdDeletes(len(dels), tracked)
		return
	}
	e.heldDelete = 0
	for _, g := range dels {
		r := g.rec
		r.Pending, r.PendingSHA, r.Attempts, r.LastError = index.OpDelete, "", 0, ""
		w.put(g.path, r)
	}
}

// holdDeletes says, once per count, that the guard held deletes back.
func (e *Engine) holdDeletes(n, tracked int) {
	e.heldDelete = n
	if e.lastGuard == n {
		return
	}
	e.lastGuard = n
	msg := fmt.Sprintf("%d of %d tracked documents are gone from the source: more than --max-delete %s allows; "+
		"nothing deleted. If that is right, run again with --max-delete %d (or 100%%)", n, tracked, e.o.MaxDelete, n)
	e.log.Warn(msg)
	e.emit(Event{Kind: EventGuard, Count: n, Message: msg})
}

func (e *Engine) noDeletes() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.noDelete
}
