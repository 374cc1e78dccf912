package syncer

import (
	"github.com/ferry-relay/ferry/client/syncer/index"
)

// writeBatch is how many record changes go in one transaction (one
// fsync): 100,000 changes must not be 100,000 syncs, nor even 200.
const writeBatch = 4096

// writer batches changes of records into transactions and keeps the
// tracked and pending counts.
type writer struct {
	e   *Engine
	ops []recordOp
	err error
}

type recordOp struct {
	path string
	rec  index.Record
	del  bool
}

func (e *Engine) newWriter() *writer { return &writer{e: e} }

func (w *writer) put(path string, r index.Record) {
	w.ops = append(w.ops, recordOp{path: path, rec: r})
	if len(w.ops) >= writeBatch {
		w.flush()
	}
}

// queue adds a put without flushing: for callers inside a read
// transaction, which a write one must not wait on.
func (w *writer) queue(path string, r index.Record) {
	w.ops = append(w.ops, recordOp{path: path, rec: r})
}

func (w *writer) del(path string) {
	w.ops = append(w.ops, recordOp{path: path, del: true})
	if len(w.ops) >= writeBatch {
		w.flush()
	}
}

// flush writes what is batched; it returns the first error of the
// writer's life (after which it writes nothing).
func (w *writer) flush() error {
	if w.err != nil || len(w.ops) == 0 {
		w.ops = w.ops[:0]
		return w.err
	}
	var dTracked, dPending int64
	w.err = w.e.d.Index.Update(func(tx *index.Tx) error {
		dTracked, dPending = 0, 0
		for _, op := range w.ops {
			old, had, err := tx.Get(op.path)
			if err != nil {
				return err
			}
			if had {
				dTracked--
				if old.Pending != "" {
					dPending--
				}
			}
			if op.del {
				if err := tx.Delete(op.path); err != nil {
					return err
				}
				continue
			}
			if err := tx.Put(op.path, op.rec); err != nil {
				return err
			}
			dTracked++
			if op.rec.Pending != "" {
				dPending++
			}
		}
		return nil
	})
	if w.err != nil {
		w.err = stateError{w.err}
	} else {
		w.e.c.tracked.Add(dTracked)
		w.e.c.pending.Add(dPending)
	}
	w.ops = w.ops[:0]
	return w.err
}

// stateError is a failure to read or write the index: Run ends on it.
type stateError struct{ err error }

func (s stateError) Error() string { return "state: " + s.err.Error() }
func (s stateError) Unwrap() error { return s.err }
