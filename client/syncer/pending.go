package syncer

import (
	"github.com/ferry-relay/ferry/client/syncer/index"
)

// PendingOp is a change ferry has not accepted yet.
type PendingOp struct {
	Path      string `json:"path"`
	Op        string `json:"op"`
	SHA256    string `json:"sha256,omitempty"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
}

// StateSummary is what an index holds, for ferry sync status.
type StateSummary struct {
	index.Meta
	Tracked int `json:"tracked"`
	Pending int `json:"pending"`
	// Refused counts the files whose content ferry refused for good.
	Refused int `json:"refused"`
	// Ops are the first pending ops, by path.
	Ops []PendingOp `json:"pending_ops"`
}

// Summarize reads the state: its counts and up to limit pending ops.
func Summarize(x *index.Index, limit int) (StateSummary, error) {
	var s StateSummary
	err := x.View(func(tx *index.Tx) error {
		var err error
		if s.Meta, err = tx.Meta(); err != nil {
			return err
		}
		s.Tracked, s.Pending = tx.Counts()
		if err := tx.Each("", func(_ string, r index.Record) error {
			if r.Refused != "" && r.Refused == r.SHA256 {
				s.Refused++
			}
			return nil
		}); err != nil {
			return err
		}
		s.Ops, err = pendingOps(tx, limit)
		return err
	})
	return s, err
}

// PendingOps returns up to limit pending ops of the engine's state.
func (e *Engine) PendingOps(limit int) ([]PendingOp, error) {
	var ops []PendingOp
	err := e.d.Index.View(func(tx *index.Tx) (err error) { ops, err = pendingOps(tx, limit); return err })
	return ops, err
}

func pendingOps(tx *index.Tx, limit int) ([]PendingOp, error) {
	var ops []PendingOp
	err := tx.Pending("", limit, func(p string) error {
		r, ok, err := tx.Get(p)
		if err != nil || !ok {
			return err
		}
		ops = append(ops, PendingOp{Path: p, Op: r.Pending, SHA256: r.PendingSHA, Attempts: r.Attempts, LastError: r.LastError})
		return nil
	})
	return ops, err
}
