package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

// documentsScenario measures the speed figures of documents with versions
// (issue 21) on one ferry serve:
//
//   - end to end 4 KiB files with a document key on every upload, against
//     the same run without keys (the ratio within each repetition);
//   - an unchanged re-send with a declared SHA-256, against GET
//     /v1/jobs/{id} (p50 of each, interleaved, same repetition);
//   - listing documents and showing one at DocumentsLarge documents
//     against DocumentsSmall (p95), loaded in bulk with SQL
//     (documents_load.go).
func documentsScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	names := append([]string{"bench"}, statusTargets...)
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, sz.E2EConcurrency, names...)})
	if err != nil {
		return err
	}
	defer p.stop()
	keyed, err := docsEndToEnd(ctx, e, p, rep)
	if err != nil {
		return err
	}
	if err := docsResend(ctx, e, p, rep, keyed); err != nil {
		return err
	}
	return docsListing(ctx, e, p, rep)
}

// docsRun is a keyed end-to-end run: document docKey(rep, i) holds file i,
// delivered as job ids[i].
type docsRun struct {
	rep int
	ids []string
}

func docKey(rep, i int) string { return fmt.Sprintf("rep-%d/dir-%02d/f%d.bin", rep, i%16, i) }

// docsEndToEnd times SmallJobs files of SmallFile end to end, with and
// without a document key on each, alternating which goes first, and returns
// the last keyed run (its documents are delivered).
func docsEndToEnd(ctx context.Context, e *env, p *ferryProc, rep *report) (docsRun, error) {
	sz := e.cfg.Sizes
	n, size := sz.SmallJobs, sz.SmallFile
	rates := map[string][]float64{}
	cpu := map[string]cpuSpent{"no key": {}, "document key": {}}
	var last docsRun
	for r := range e.cfg.Reps {
		for k := range 2 {
			withKeys := (k+r)%2 == 1
			name := map[bool]string{false: "no key", true: "document key"}[withKeys]
			d, ids, spent, err := docsTimedRun(ctx, e, p, r, withKeys)
			if err != nil {
				return last, fmt.Errorf("%s: %w", name, err)
			}
			for g, v := range spent {
				cpu[name][g] += v
			}
			rates[name] = append(rates[name], float64(n)/d.Seconds())
			if withKeys {
				last = docsRun{rep: r, ids: ids}
			}
			e.cfg.progress("documents e2e, %s: %d files in %s", name, n, d.Round(time.Millisecond))
		}
	}
	keyed, plain := rates["document key"], rates["no key"]
	rep.add(row{Figure: fmt.Sprintf("end to end %s files, a document key on every upload (vs no key)", sizeName(size)), Unit: "jobs/s",
		Ferry: spreadOf(keyed), Raw: spreadOf(plain), Ratio: spreadOf(ratios(keyed, plain)), Goal: goal{kind: "ratio>=", x: 0.9}})
	units := float64(n * e.cfg.Reps)
	rep.details = append(rep.details, cpuTable(fmt.Sprintf("CPU split, end to end %s files with and without a document key", sizeName(size)),
		"job", []string{"no key", "document key"}, cpu, map[string]float64{"no key": units, "document key": units}))
	return last, nil
}

// docsTimedRun is one end-to-end run (profiled in the first repetition)
// and the CPU each process group spent on it.
func docsTimedRun(ctx context.Context, e *env, p *ferryProc, r int, withKeys bool) (time.Duration, []string, cpuSpent, error) {
	sz := e.cfg.Sizes
	rctx, cancel := context.WithTimeout(ctx, sz.RunTimeout)
	defer cancel()
	var key func(int) string
	prof := "documents-e2e-nokey"
	if withKeys {
		key, prof = func(i int) string { return docKey(r, i) }, "documents-e2e-keys"
	}
	stopProf := func() {}
	if r == 0 {
		stopProf = e.prof.start(prof, p)
	}
	before := cpuSnapshot(rctx, p.pool, p.pid())
	d, ids, err := ferryRunKeyed(rctx, e, p, sz.SmallJobs, sz.SmallFile, key)
	spent := cpuSnapshot(rctx, p.pool, p.pid()).sub(before)
	stopProf()
	return d, ids, spent, err
}

// docsResend times, interleaved, StatusQueries unchanged re-sends of a
// delivered document (raw upload with document and sha256: answered 200
// before the body is read) and as many GET /v1/jobs/{id}, and compares
// their p50s within each repetition.
func docsResend(ctx context.Context, e *env, p *ferryProc, rep *report, run docsRun) error {
	sz := e.cfg.Sizes
	sums := make([]string, len(run.ids))
	for i := range sums {
		h := sha256.New()
		if _, err := io.Copy(h, newBlockReader(i, sz.SmallFile)); err != nil {
			return err
		}
		sums[i] = hex.EncodeToString(h.Sum(nil))
	}
	var resend, get []float64
	for r := range e.cfg.Reps {
		rs, gs, err := docsResendRep(ctx, p, run, sums, sz.SmallFile, sz.StatusQueries, r)
		if err != nil {
			return err
		}
		resend, get = append(resend, percentile(rs, 50)), append(get, percentile(gs, 50))
		e.cfg.progress("documents re-send p50 %.2f ms, GET /v1/jobs/{id} p50 %.2f ms", resend[r], get[r])
	}
	rep.add(row{Figure: "unchanged re-send with declared SHA-256, p50 (vs GET /v1/jobs/{id} p50)", Unit: "ms",
		Ferry: spreadOf(resend), Raw: spreadOf(get), Ratio: spreadOf(ratios(resend, get)), Goal: goal{kind: "ratio<=", x: 2}})
	rep.note("Documents: end to end as the e2e figures (%d × %s files, %d uploaders, %d delivery slots), ferry with and without a document key on each upload (a new document each, no sha256 field), in alternating order, the ratio within each repetition. Re-send: %d sequential raw uploads per repetition of a delivered document's unchanged %s file with document and sha256 in the query (answered 200 before the body is read; ferry closes that connection, so each re-send opens a new loopback connection), interleaved with as many GET /v1/jobs/{id} of the same jobs over keep-alive, each timed at the client to the last byte of the answer.",
		sz.SmallJobs, sizeName(sz.SmallFile), sz.E2EConcurrency, sz.E2EConcurrency, sz.StatusQueries, sizeName(sz.SmallFile))
	return nil
}

// docsResendRep is one repetition of docsResend: n of each (after five
// unmeasured), in milliseconds.
func docsResendRep(ctx context.Context, p *ferryProc, run docsRun, sums []string, size int64, n, r int) (resend, get []float64, err error) {
	rng := rand.New(rand.NewPCG(uint64(r), 21))
	for j := range n + 5 {
		i := rng.IntN(len(run.ids))
		q := url.Values{"target": {"bench"}, "filename": {fmt.Sprintf("f%d.bin", i)},
			"document": {docKey(run.rep, i)}, "sha256": {sums[i]}}
		t := time.Now()
		id, err := p.uploadWith(ctx, q, http.StatusOK, newBlockReader(i, size), size)
		d := time.Since(t)
		if err != nil {
			return nil, nil, fmt.Errorf("re-send: %w", err)
		}
		if id != run.ids[i] {
			return nil, nil, fmt.Errorf("re-send of %s answered job %s, want its version's job %s", docKey(run.rep, i), id, run.ids[i])
		}
		path := "/v1/jobs/" + run.ids[rng.IntN(len(run.ids))]
		t = time.Now()
		code, err := p.get(ctx, path)
		g := time.Since(t)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET %s: status %d", path, code)
		}
		if err != nil {
			return nil, nil, err
		}
		if j >= 5 {
			resend, get = append(resend, ms(d)), append(get, ms(g))
		}
	}
	return resend, get, nil
}

// docsQuery is one documents request to time.
type docsQuery struct {
	name string
	path func(l *docLoader, rng *rand.Rand) string
	// page is true when the answer is a page that must hold 100 documents.
	page bool
}

func docsQueries() []docsQuery {
	return []docsQuery{
		{name: "GET /v1/documents?target=…&limit=100", page: true, path: func(_ *docLoader, rng *rand.Rand) string {
			return "/v1/documents?limit=100&target=" + statusTargets[rng.IntN(len(statusTargets))]
		}},
		{name: "GET /v1/documents?target=…&limit=100&cursor=… (a random page)", page: true, path: func(l *docLoader, rng *rand.Rand) string {
			key, target := l.randomCursor(rng)
			return "/v1/documents?limit=100&target=" + target + "&cursor=" + key
		}},
		{name: "GET /v1/documents/{id}", path: func(l *docLoader, rng *rand.Rand) string {
			return "/v1/documents/" + l.randomID(rng)
		}},
	}
}

// docsListing times the documents queries with DocumentsSmall, then
// DocumentsLarge documents loaded, and compares their p95s.
func docsListing(ctx context.Context, e *env, p *ferryProc, rep *report) error {
	sz := e.cfg.Sizes
	l := &docLoader{pool: p.pool}
	qs := docsQueries()
	var stages [2]map[string][]float64
	for s, rows := range []int{sz.DocumentsSmall, sz.DocumentsLarge} {
		t := time.Now()
		if err := l.load(ctx, rows); err != nil {
			return err
		}
		e.cfg.progress("documents: %d documents loaded (INSERT … SELECT, then VACUUM ANALYZE) in %s", rows, time.Since(t).Round(100*time.Millisecond))
		if err := checkDocs(ctx, p, l, qs); err != nil {
			return fmt.Errorf("at %d documents: %w", rows, err)
		}
		stages[s] = map[string][]float64{}
		stopProf := e.prof.start(fmt.Sprintf("documents-%d", rows), p)
		for r := range e.cfg.Reps {
			for _, q := range qs {
				sq := statusQuery{name: q.name, path: func(_ *jobLoader, rng *rand.Rand) string { return q.path(l, rng) }}
				lat, err := timeQueries(ctx, p, nil, sq, sz.StatusQueries)
				if err != nil {
					stopProf()
					return fmt.Errorf("at %d documents: %w", rows, err)
				}
				stages[s][q.name] = append(stages[s][q.name], percentile(lat, 95))
				if r == 0 {
					e.cfg.progress("documents %d, %s: p50 %.2f ms, p95 %.2f ms", rows, q.name, percentile(lat, 50), percentile(lat, 95))
				}
			}
		}
		stopProf()
	}
	for _, q := range qs {
		small, large := stages[0][q.name], stages[1][q.name]
		rep.add(row{Figure: fmt.Sprintf("documents %s p95 at %s documents (vs at %s)", q.name, count(sz.DocumentsLarge), count(sz.DocumentsSmall)),
			Unit: "ms", Ferry: spreadOf(large), Raw: spreadOf(small), Ratio: spreadOf(ratios(large, small)), Goal: goal{kind: "ratio<=", x: 2}})
	}
	rep.note("Documents listing: documents and their versions (jobs, every index and trigger of ferry's schema) inserted with INSERT … SELECT generate_series, then VACUUM ANALYZE; %d targets, one document in ten with 3 versions, the rest with 1, all delivered. Each figure: %d sequential requests per repetition over keep-alive HTTP, timed at the client to the last byte; random targets, pages after a random document's key, random documents. Every list query returns a full page of 100 at both sizes.",
		len(statusTargets), sz.StatusQueries)
	return nil
}

// checkDocs makes sure every query answers 200, list queries with a full
// page, so that the two sizes are compared on the same work.
func checkDocs(ctx context.Context, p *ferryProc, l *docLoader, qs []docsQuery) error {
	rng := rand.New(rand.NewPCG(7, 21))
	for _, q := range qs {
		for range 3 {
			path := q.path(l, rng)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+p.key)
			resp, err := p.client.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: status %d: %.300s", path, resp.StatusCode, body)
			}
			var page struct {
				Documents []json.RawMessage `json:"documents"`
			}
			if q.page {
				if err := json.Unmarshal(body, &page); err != nil {
					return fmt.Errorf("GET %s: reading the page: %w", path, err)
				}
				if len(page.Documents) != 100 {
					return fmt.Errorf("GET %s: want a page of 100 documents, got %d", path, len(page.Documents))
				}
			}
		}
	}
	return nil
}
