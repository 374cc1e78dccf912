package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Documents with versions (issue 21), Config.Versions > 1: every file is
// a document, sent in that many versions of distinct contents. The
// versions of one document go one after the other (the next once the
// previous is accepted), so that acceptance order is the order sent; some
// follow within moments (the previous one is likely still queued: it is
// then SUPERSEDED), the others later in the run, across the faults.

// minVersionBytes keeps two versions of a document from having the same
// content by chance (two empty files would).
const minVersionBytes = 16

// makeDocuments draws n documents of versions versions each, as files
// (idx = document*versions + version-1): a share for the slow document
// target, a share sent slowly.
func makeDocuments(n, versions, maxBytes int, seed uint64, slowShare, trickleShare float64) []file {
	rng := rand.New(rand.NewPCG(seed, 0xd0c5))
	files := make([]file, 0, n*versions)
	for d := range n {
		target := targetDocs
		if rng.Float64() < slowShare {
			target = targetDocsSlow
		}
		name := fmt.Sprintf("chaos-doc-%05d.bin", d)
		for v := 1; v <= versions; v++ {
			f := file{idx: len(files), name: name, target: target, doc: name, version: v,
				size: max(drawSize(rng, maxBytes), minVersionBytes), trickle: rng.Float64() < trickleShare}
			sum := sha256.Sum256(f.content(seed))
			f.sha256 = hex.EncodeToString(sum[:])
			files = append(files, f)
		}
	}
	return files
}

// docPlan is when a document's versions are sent: the first at start, each
// next one gaps[i] after the previous was accepted.
type docPlan struct {
	versions []file
	start    time.Duration
	gaps     []time.Duration
}

// planDocuments groups files (as makeDocuments made them) by document: the
// first versions spread over the first third of spread, then each next
// version within moments (a third of them) or up to a third of spread
// later.
func planDocuments(files []file, versions int, spread time.Duration, seed uint64) []docPlan {
	rng := rand.New(rand.NewPCG(seed, 0x9a95))
	n := len(files) / versions
	plans := make([]docPlan, n)
	for d := range plans {
		p := docPlan{versions: files[d*versions : (d+1)*versions], start: spread / 3 * time.Duration(d) / time.Duration(max(n, 1))}
		for range versions - 1 {
			gap := time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
			if rng.IntN(3) > 0 {
				gap = time.Duration(rng.Int64N(int64(spread/3) + 1))
			}
			p.gaps = append(p.gaps, gap)
		}
		plans[d] = p
	}
	return plans
}

// runDocuments uploads the documents of plans, each version once the
// previous one is accepted, at most n uploads at once, and returns when
// every version is accepted, one was refused, or ctx ends.
func (u *uploader) runDocuments(ctx context.Context, plans []docPlan, n int) {
	slots := make(chan struct{}, n)
	begin := time.Now()
	var wg sync.WaitGroup
	for _, p := range plans {
		wg.Go(func() {
			if !sleepCtx(ctx, time.Until(begin.Add(p.start))) {
				return
			}
			for i, f := range p.versions {
				if i > 0 && !sleepCtx(ctx, p.gaps[i-1]) {
					return
				}
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				u.upload(ctx, f)
				<-slots
				u.mu.Lock()
				_, ok := u.results[f.idx]
				u.mu.Unlock()
				if !ok {
					return // refused, or the run ends: the next version would not be next
				}
			}
		})
	}
	wg.Wait()
	u.client.CloseIdleConnections()
}
