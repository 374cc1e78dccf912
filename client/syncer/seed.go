package syncer

import (
	"context"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/syncer/index"
)

// seedPage is the page size asked of ferry's document list.
const seedPage = 1000

// seed fills an index that was never seeded with the target's documents
// and their current SHA-256, read in pages: a file whose content ferry
// has already is then not sent (a new machine, a lost state folder). A
// failure is not fatal: uploads declare their SHA-256, so ferry answers
// an unchanged one without its bytes anyway; the seed is tried again on
// the next run.
func (e *Engine) seed(ctx context.Context) {
	var m index.Meta
	if err := e.d.Index.View(func(tx *index.Tx) (err error) { m, err = tx.Meta(); return err }); err != nil || m.Seeded {
		return
	}
	w := e.newWriter()
	n := 0
	page := make([]apitypes.Document, 0, seedPage)
	err := e.d.Client.EachDocument(ctx, client.DocumentFilter{Target: e.o.Target, State: apitypes.DocumentActive, Limit: seedPage},
		func(d apitypes.Document) error {
			if d.Current == nil || d.Current.SHA256 == "" {
				return nil
			}
			n++
			if page = append(page, d); len(page) == seedPage {
				err := e.seedPage(w, page)
				page = page[:0]
				return err
			}
			return nil
		})
	if err == nil {
		err = e.seedPage(w, page)
	}
	if ferr := w.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		e.log.Warn("could not read the target's documents; unchanged files are still not sent twice", "err", err)
		return
	}
	e.log.Info("state seeded from ferry's documents", "documents", n)
	_ = e.d.Index.Update(func(tx *index.Tx) error {
		m, err := tx.Meta()
		if err != nil {
			return err
		}
		m.Seeded = true
		return tx.SetMeta(m)
	})
}

// seedPage records the documents ferry holds whose keys the index does
// not know.
func (e *Engine) seedPage(w *writer, docs []apitypes.Document) error {
	return e.d.Index.View(func(tx *index.Tx) error {
		for _, d := range docs {
			_, known, err := tx.Get(d.Key)
			if err != nil {
				return err
			}
			if !known {
				w.queue(d.Key, index.Record{Size: -1, Accepted: d.Current.SHA256, Job: d.Current.Job, Version: d.Current.Version, Seeded: true})
			}
		}
		return nil
	})
}
