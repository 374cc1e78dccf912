package syncer

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// lookupChunk is how many listed entries are looked up in the index in
// one read transaction.
const lookupChunk = 512

// scope is what a pass looks at: the whole source, or hinted paths (files
// or folders).
type scope struct {
	full  bool
	paths []string
}

// cand is a file whose stat differs from the index (or that is new): it
// must be found stable and hashed.
type cand struct {
	e     source.Entry
	rec   index.Record
	known bool
}

// gone is a record whose file the pass did not find.
type gone struct {
	path string
	rec  index.Record
}

// listing is what a pass found.
type listing struct {
	cands []cand
	gone  []gone
	// incomplete: some folder could not be read; nothing is deleted.
	incomplete bool
	seen       map[string]struct{}
	// covered are the exact paths and the prefixes whose records the
	// listing had authority over.
	exact, prefixes []string
}

// subtreeWalker is a source that lists one folder of itself (source.Dir).
type subtreeWalker interface {
	WalkUnder(ctx context.Context, prefix string, fn func(source.Entry) error) error
}

// pass lists the scope, records renames and deletes, and takes changed
// files once stable: hashed and, when their content is new, recorded as
// pending uploads.
func (e *Engine) pass(ctx context.Context, sc scope) error {
	if sc.full {
		e.emit(Event{Kind: EventRescan})
	}
	start := time.Now()
	l, err := e.list(ctx, sc)
	if err != nil {
		return err
	}
	e.log.Debug("pass listed", "full", sc.full, "changed", len(l.cands), "seen", len(l.seen), "took", time.Since(start))
	if err := e.findGone(l); err != nil {
		return err
	}
	w := e.newWriter()
	l.cands = e.renames(l, w)
	e.applyGone(l, w)
	if err := w.flush(); err != nil {
		return err
	}
	if err := e.settle(ctx, l.cands, !sc.full); err != nil {
		return err
	}
	e.log.Debug("pass settled", "gone", len(l.gone), "took", time.Since(start))
	if sc.full && !l.incomplete && ctx.Err() == nil {
		return e.d.Index.Update(func(tx *index.Tx) error {
			m, err := tx.Meta()
			if err != nil {
				return err
			}
			m.LastFullScan = time.Now().Unix()
			return tx.SetMeta(m)
		})
	}
	return nil
}

// list walks the scope and keeps the entries the index does not match.
// The walk (system calls) and the lookups in the index (CPU) run side by
// side, a chunk of entries at a time.
func (e *Engine) list(ctx context.Context, sc scope) (*listing, error) {
	l := &listing{seen: map[string]struct{}{}}
	chunks := make(chan []source.Entry, 2)
	var lookErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range chunks {
			if lookErr == nil {
				lookErr = e.lookup(c, l)
			}
		}
	}()
	chunk := make([]source.Entry, 0, lookupChunk)
	add := func(en source.Entry) error {
		chunk = append(chunk, en)
		if len(chunk) >= lookupChunk {
			chunks <- chunk
			chunk = make([]source.Entry, 0, lookupChunk)
		}
		return nil
	}
	var err error
	if sc.full {
		l.prefixes = []string{""}
		err = e.d.Source.Walk(ctx, add)
	} else {
		err = e.listHinted(ctx, sc.paths, l, add)
	}
	chunks <- chunk
	close(chunks)
	<-done
	if errors.Is(err, source.ErrIncomplete) {
		e.log.Warn("some folders could not be read: no deletes this pass", "err", err)
		e.emit(Event{Kind: EventWarning, Message: err.Error()})
		l.incomplete, err = true, nil
	}
	if err != nil {
		return nil, err
	}
	return l, lookErr
}

// listHinted looks at each hinted path: a file, a folder (listed when the
// source can list one folder), or nothing any more.
func (e *Engine) listHinted(ctx context.Context, paths []string, l *listing, add func(source.Entry) error) error {
	for _, p := range paths {
		en, err := e.d.Source.Stat(ctx, p)
		switch {
		case err == nil:
			l.exact = append(l.exact, p)
			if err := add(en); err != nil {
				return err
			}
		case errors.Is(err, source.ErrIsDir):
			sw, ok := e.d.Source.(subtreeWalker)
			if !ok {
				e.Rescan("a folder changed")
				continue
			}
			l.prefixes = append(l.prefixes, p+"/")
			if err := sw.WalkUnder(ctx, p, add); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case errors.Is(err, source.ErrGone):
			return err
		case errors.Is(err, fs.ErrNotExist):
			l.exact = append(l.exact, p)
			l.prefixes = append(l.prefixes, p+"/")
		default:
			e.log.Warn("cannot look at a changed file; a later pass will", "path", p, "err", err)
		}
	}
	return nil
}

// lookup compares listed entries with their records.
func (e *Engine) lookup(chunk []source.Entry, l *listing) error {
	return e.d.Index.View(func(tx *index.Tx) error {
		for _, en := range chunk {
			if _, dup := l.seen[en.Path]; dup {
				continue // hinted twice: as itself and in its folder
			}
			l.seen[en.Path] = struct{}{}
			st, ok, err := tx.GetStat(en.Path)
			if err != nil {
				return err
			}
			if ok && !st.Seeded && !st.PendingDelete && statMatches(st, en) {
				continue
			}
			rec, ok, err := tx.Get(en.Path)
			if err != nil {
				return err
			}
			l.cands = append(l.cands, cand{e: en, rec: rec, known: ok})
		}
		return nil
	})
}

// findGone collects the records the listing covered but did not see.
func (e *Engine) findGone(l *listing) error {
	// Each path once, though hinted folders may hold one another: a
	// path found gone joins seen.
	add := func(p string, rec index.Record) {
		if _, ok := l.seen[p]; !ok {
			l.seen[p] = struct{}{}
			l.gone = append(l.gone, gone{path: p, rec: rec})
		}
	}
	return e.d.Index.View(func(tx *index.Tx) error {
		for _, p := range l.exact {
			if rec, ok, err := tx.Get(p); err != nil {
				return err
			} else if ok {
				add(p, rec)
			}
		}
		for _, prefix := range l.prefixes {
			err := tx.Keys(prefix, func(k []byte) error {
				if _, ok := l.seen[string(k)]; ok {
					return nil // the usual case: read no record
				}
				rec, _, err := tx.Get(string(k))
				add(string(k), rec)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// recordMatches reports whether a listed entry is the file the record
// describes: same ETag and size for objects, same size, mtime and inode
// for files.
func recordMatches(r index.Record, en source.Entry) bool {
	if r.ETag != "" || en.ETag != "" {
		return r.ETag == en.ETag && r.Size == en.Size
	}
	return r.Size == en.Size && r.MTime == en.ModTime.UnixNano() && r.Inode == en.Inode
}

// statMatches is recordMatches on a record's stat.
func statMatches(s index.Stat, en source.Entry) bool {
	return recordMatches(index.Record{Size: s.Size, MTime: s.MTime, Inode: s.Inode, ETag: s.ETag}, en)
}

// sameEntry reports whether two looks at a file saw the same.
func sameEntry(a, b source.Entry) bool {
	if a.ETag != "" || b.ETag != "" {
		return a.ETag == b.ETag && a.Size == b.Size
	}
	return a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.Inode == b.Inode
}

// withStat returns r with the stat of en.
func withStat(r index.Record, en source.Entry) index.Record {
	r.Size, r.MTime, r.Inode, r.ETag, r.Seeded = en.Size, en.ModTime.UnixNano(), en.Inode, en.ETag, false
	return r
}
