package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/internal/ctxio"
)

// hashBufSize is the read size of hashing.
const hashBufSize = 1 << 20

var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// hashed is a candidate found stable, with its content's SHA-256.
type hashed struct {
	c   cand
	en  source.Entry
	sum string
}

// settle takes the candidates once stable: a file is taken when two looks
// at least MinAge apart saw the same size and mtime, and a look after
// hashing still does. All candidates wait together (one wait per round,
// not one per file). Files still changing after SettleMax are left: in
// Run they are looked at again later, in Once they are counted.
//
// A hint (Touch) comes from the watcher after the file was quiet for its
// debounce: no write event meanwhile. In a hinted pass, a file whose mtime
// is already MinAge old by the local clock is therefore taken without a
// second wait (still looked at again after hashing): a change at idle is
// accepted right after the debounce. Full passes (rescans, polling of
// network filesystems, whose clocks may differ) always look twice.
func (e *Engine) settle(ctx context.Context, cands []cand, hinted bool) error {
	start := time.Now()
	if hinted {
		var young []cand
		var quiet []cand
		for _, c := range cands {
			if age := start.Sub(c.e.ModTime); age >= e.o.MinAge {
				quiet = append(quiet, c)
			} else {
				young = append(young, c)
			}
		}
		again, err := e.hashRound(ctx, quiet)
		if err != nil {
			return err
		}
		cands = append(young, again...)
	}
	for len(cands) > 0 {
		if !sleepCtx(ctx, e.o.MinAge) {
			return nil
		}
		var err error
		if cands, err = e.hashRound(ctx, cands); err != nil {
			return err
		}
		if len(cands) > 0 && time.Since(start) >= e.o.SettleMax {
			e.leaveUnsettled(cands)
			return nil
		}
	}
	return nil
}

// leaveUnsettled gives up, for now, on files that keep changing.
func (e *Engine) leaveUnsettled(cands []cand) {
	paths := make([]string, 0, len(cands))
	for _, c := range cands {
		paths = append(paths, c.e.Path)
		e.emit(Event{Kind: EventUnsettled, Path: c.e.Path, Message: "still being written; taken when it is stable"})
	}
	if e.running {
		e.Touch(paths...)
		return
	}
	e.unsettled += len(cands)
}

// hashRound looks again at each candidate and hashes the stable ones, in
// parallel; it returns those to look at again.
func (e *Engine) hashRound(ctx context.Context, cands []cand) ([]cand, error) {
	in := make(chan cand)
	type result struct {
		h     *hashed
		again *cand
	}
	out := make(chan result)
	var wg sync.WaitGroup
	for range e.o.Hashers {
		wg.Go(func() {
			for c := range in {
				h, again := e.hashOne(ctx, c)
				out <- result{h, again}
			}
		})
	}
	go func() {
		defer close(in)
		for _, c := range cands {
			select {
			case in <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	var next []cand
	w := e.newWriter()
	for r := range out {
		switch {
		case r.again != nil:
			next = append(next, *r.again)
		case r.h != nil:
			w.put(r.h.en.Path, e.decide(r.h.c, r.h.en, r.h.sum))
		}
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	return next, nil
}

// hashOne opens a candidate: unchanged since the last look, it is hashed
// and looked at once more. A file that changed is returned to be looked
// at again; one that is gone is dropped (a later pass sees it gone).
func (e *Engine) hashOne(ctx context.Context, c cand) (*hashed, *cand) {
	rc, en, err := e.d.Source.Open(ctx, c.e.Path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && ctx.Err() == nil {
			e.log.Warn("cannot read a file; a later pass will try again", "path", c.e.Path, "err", err)
		}
		return nil, nil
	}
	defer rc.Close()
	if !sameEntry(en, c.e) {
		c.e = en
		return nil, &c
	}
	bp := hashBufs.Get().(*[]byte)
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxio.Reader(ctx, rc), *bp)
	hashBufs.Put(bp)
	e.c.hashedBytes.Add(n)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("cannot read a file; a later pass will try again", "path", c.e.Path, "err", err)
		}
		return nil, nil
	}
	e.c.hashed.Add(1)
	after, err := e.d.Source.Stat(ctx, c.e.Path)
	if err != nil {
		return nil, nil
	}
	if !sameEntry(after, en) || n != en.Size {
		c.e = after
		return nil, &c
	}
	return &hashed{c: c, en: en, sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// decide is the record of a file found stable with content sum: nothing
// to send when ferry has that content already (a touch, a copy back), a
// pending upload otherwise.
func (e *Engine) decide(c cand, en source.Entry, sum string) index.Record {
	r := withStat(c.rec, en)
	r.SHA256 = sum
	switch {
	case r.Pending == index.OpUpload && r.PendingSHA == sum:
		// on its way already
	case sum == r.Accepted && (r.Pending != index.OpUpload || r.Attempts == 0):
		// ferry's latest is this content (and no other content may have
		// been sent since): nothing to send; a pending delete is off.
		r.Pending, r.PendingSHA, r.Attempts, r.LastError = "", "", 0, ""
	case sum == r.Refused:
		r.Pending, r.PendingSHA = "", ""
	default:
		r.Pending, r.PendingSHA, r.Attempts, r.LastError = index.OpUpload, sum, 0, ""
		e.c.changed(time.Now())
	}
	return r
}
