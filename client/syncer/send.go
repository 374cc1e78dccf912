package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/syncer/index"
)

// sendChunk is how many pending ops are read, marked and sent together.
const sendChunk = 256

// errTransient means ferry was unreachable or busy: the ops not sent stay
// pending.
var errTransient = errors.New("ferry unreachable or busy")

// op is one pending op to send.
type op struct {
	path string
	rec  index.Record
}

// outcome is what became of an op: its record's new value (or its
// removal), and whether ferry failed transiently.
type outcome struct {
	op        op
	rec       index.Record
	drop      bool
	transient error
	ev        *Event
}

// sendPending sends the pending ops, Concurrency at a time, until none is
// left, ferry fails transiently (errTransient) or ctx ends. The uploads
// in flight when ctx ends are finished, not cut.
func (e *Engine) sendPending(ctx context.Context) error {
	after := ""
	for ctx.Err() == nil {
		ops, err := e.pendingOps(after)
		if err != nil {
			return stateError{err}
		}
		if len(ops) == 0 {
			return nil
		}
		after = ops[len(ops)-1].path
		if err := e.sendChunk(ctx, ops); err != nil {
			return err
		}
	}
	return nil
}

// pendingOps reads the next pending ops and counts an attempt for each,
// in one transaction, before any is sent: a record with attempts may have
// reached ferry.
func (e *Engine) pendingOps(after string) ([]op, error) {
	var ops []op
	err := e.d.Index.Update(func(tx *index.Tx) error {
		var paths []string
		if err := tx.Pending(after, sendChunk, func(p string) error { paths = append(paths, p); return nil }); err != nil {
			return err
		}
		for _, p := range paths {
			rec, ok, err := tx.Get(p)
			if err != nil || !ok || rec.Pending == "" {
				continue
			}
			rec.Attempts++
			if err := tx.Put(p, rec); err != nil {
				return err
			}
			ops = append(ops, op{path: p, rec: rec})
		}
		return nil
	})
	return ops, err
}

// sendChunk sends ops and records what became of them; it stops feeding
// at the first transient failure.
func (e *Engine) sendChunk(ctx context.Context, ops []op) error {
	in := make(chan op)
	out := make(chan outcome)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range e.o.Concurrency {
		wg.Go(func() {
			for o := range in {
				e.c.sending.Add(1)
				out <- e.sendOne(ctx, o)
				e.c.sending.Add(-1)
			}
		})
	}
	go func() {
		defer close(in)
		for _, o := range ops {
			if ctx.Err() != nil || stop.Load() {
				return
			}
			in <- o
		}
	}()
	go func() { wg.Wait(); close(out) }()
	w := e.newWriter()
	var transient error
	for r := range out {
		if r.transient != nil {
			stop.Store(true)
			transient = r.transient
		}
		if r.drop {
			w.del(r.op.path)
		} else {
			w.put(r.op.path, r.rec)
		}
		if r.ev != nil {
			r.ev.Path = r.op.path
			e.emit(*r.ev)
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	if transient != nil {
		return fmt.Errorf("%w: %w", errTransient, transient)
	}
	return nil
}

// sendOne sends one op. It runs to its end even when ctx ends: a stop
// lets the uploads in flight finish.
func (e *Engine) sendOne(ctx context.Context, o op) outcome {
	uctx := context.WithoutCancel(ctx)
	if o.rec.Pending == index.OpDelete {
		return e.deleteOne(uctx, o)
	}
	return e.uploadOne(uctx, o)
}

// uploadOne sends the file's content, declaring its SHA-256 as recorded.
// A file that is no longer that content is not sent: it is looked at
// again (Touch).
func (e *Engine) uploadOne(ctx context.Context, o op) outcome {
	r := o.rec
	rc, en, err := e.d.Source.Open(ctx, o.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			r.Size = -1 // gone since: the next pass decides
			e.Touch(o.path)
			return outcome{op: o, rec: r}
		}
		r.LastError = err.Error()
		return outcome{op: o, rec: r, ev: &Event{Kind: EventWarning, Message: "cannot read: " + err.Error()}}
	}
	defer rc.Close()
	if !recordMatches(r, en) {
		return e.changed(o)
	}
	job, created, err := e.upload(ctx, client.Upload{
		Target: e.o.Target, Batch: e.o.Batch, Filename: path.Base(o.path), Path: o.path, Params: e.o.Params,
		Document: o.path, SHA256: r.PendingSHA, Body: rc, Size: en.Size,
	})
	if err != nil {
		return e.uploadFailed(ctx, o, err)
	}
	r.Accepted, r.Job, r.Version = r.PendingSHA, job.ID, job.Version
	r.Pending, r.PendingSHA, r.Attempts, r.LastError, r.Refused = "", "", 0, "", ""
	ev := &Event{Kind: EventUnchanged, Job: job.ID, Version: job.Version}
	if created {
		ev.Kind = EventAccepted
		e.c.accepted.Add(1)
		e.trackJob(job.ID)
	} else {
		e.c.unchanged.Add(1)
	}
	e.c.changed(time.Now())
	return outcome{op: o, rec: r, ev: ev}
}

// upload sends u in one request, or, from SessionThreshold bytes on,
// through an upload session (in parts; a session started before a crash
// is found again by its key, made of the document and its content).
func (e *Engine) upload(ctx context.Context, u client.Upload) (apitypes.Job, bool, error) {
	if e.o.SessionThreshold < 0 || u.Size < e.o.SessionThreshold {
		return e.d.Client.Upload(ctx, u)
	}
	u.IdempotencyKey = "ferry-sync:" + u.Target + ":" + u.SHA256 + ":" + u.Document
	if len(u.IdempotencyKey) > 200 {
		h := sha256.Sum256([]byte(u.IdempotencyKey))
		u.IdempotencyKey = "ferry-sync:" + hex.EncodeToString(h[:])
	}
	return e.d.Client.UploadLarge(ctx, client.LargeUpload{Upload: u, File: u.Body})
}

// changed is the outcome of a file that changed after it was hashed.
func (e *Engine) changed(o op) outcome {
	r := o.rec
	r.Size = -1 // hash again: it stays pending meanwhile, so nothing is lost
	e.Touch(o.path)
	return outcome{op: o, rec: r, ev: &Event{Kind: EventChanged, Message: "changed since it was hashed; taken again when stable"}}
}

// uploadFailed records a failed upload: kept pending when ferry may take
// it later, refused for good otherwise (unless the file changed: ferry
// refuses bytes that do not match the SHA-256 declared).
func (e *Engine) uploadFailed(ctx context.Context, o op, err error) outcome {
	r := o.rec
	r.LastError = err.Error()
	if client.Retryable(ctx, err) {
		return outcome{op: o, rec: r, transient: err}
	}
	if now, serr := e.d.Source.Stat(ctx, o.path); serr == nil && !recordMatches(r, now) {
		return e.changed(o)
	}
	r.Refused, r.Pending, r.PendingSHA = r.PendingSHA, "", ""
	e.c.refused.Add(1)
	return outcome{op: o, rec: r, ev: &Event{Kind: EventRefused, Message: err.Error()}}
}

// deleteOne sends a delete of the document.
func (e *Engine) deleteOne(ctx context.Context, o op) outcome {
	job, err := e.d.Client.DeleteDocument(ctx, e.o.Target, o.path)
	var ce *client.Error
	switch {
	case err == nil:
		e.c.deleted.Add(1)
		e.c.changed(time.Now())
		e.trackJob(job.ID)
		return outcome{op: o, drop: true, ev: &Event{Kind: EventDeleted, Job: job.ID, Version: job.Version}}
	case client.IsNotFound(err):
		return outcome{op: o, drop: true} // nothing there to delete
	case errors.As(err, &ce) && ce.StatusCode == http.StatusUnprocessableEntity && ce.Code == "delete_unsupported":
		return outcome{op: o, drop: true, ev: e.sayNoDelete(ce)}
	case client.Retryable(ctx, err):
		r := o.rec
		r.LastError = err.Error()
		return outcome{op: o, rec: r, transient: err}
	default:
		e.c.refused.Add(1)
		return outcome{op: o, drop: true, ev: &Event{Kind: EventRefused, Message: "delete: " + err.Error()}}
	}
}

// sayNoDelete stops deletes for the target, saying so once.
func (e *Engine) sayNoDelete(ce *client.Error) *Event {
	e.mu.Lock()
	first := !e.noDelete
	e.noDelete = true
	e.mu.Unlock()
	if !first {
		return nil
	}
	e.log.Warn("the target's kind has no delete: files removed from the source stay at the target", "err", ce.Message)
	return &Event{Kind: EventNoDelete, Message: ce.Message}
}
