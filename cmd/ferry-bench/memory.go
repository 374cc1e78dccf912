package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// memoryScenario compares the peak RSS of `ferry serve` while one large file
// (2 GiB) is uploaded and delivered with the same for a small one (1 MiB).
// Each pass runs a fresh ferry process, so that VmHWM is that pass's peak.
// The file is generated from a PRNG as it is sent; the target hashes it and
// checks it against the SHA-256 ferry computed on upload.
func memoryScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	var big, ref, idle, sampled, bigRate []float64
	for r := range e.cfg.Reps {
		sizes := []int64{sz.RefFile, sz.BigFile}
		if r%2 == 1 {
			sizes[0], sizes[1] = sizes[1], sizes[0]
		}
		for _, size := range sizes {
			res, err := memoryPass(ctx, e, pool, dbURL, size, r)
			if err != nil {
				return fmt.Errorf("%s file: %w", sizeName(size), err)
			}
			e.cfg.progress("memory %s: peak RSS %.0f MiB (idle %.0f MiB), %s", sizeName(size), res.hwm, res.idle, res.took.Round(time.Millisecond))
			if err := e.emptyBucket(ctx); err != nil {
				return err
			}
			if size == sz.BigFile {
				big = append(big, res.hwm)
				sampled = append(sampled, res.sampled)
				bigRate = append(bigRate, mbps(2*size, res.took))
			} else {
				ref = append(ref, res.hwm)
				idle = append(idle, res.idle)
			}
		}
	}
	rep.add(row{Figure: fmt.Sprintf("peak RSS of ferry serve, one %s file in and out (vs one %s file)", sizeName(sz.BigFile), sizeName(sz.RefFile)),
		Unit: "MiB", Ferry: spreadOf(big), Raw: spreadOf(ref), Ratio: spreadOf(ratios(big, ref)), Goal: goal{kind: "ratio<=", x: 1.2}})
	rep.note("Memory: VmHWM of a fresh `ferry serve` per pass (its embedded NATS included); RSS right after start: %s MiB; the largest VmRSS sampled every 20 ms during the %s pass: %s MiB; that pass moved its file in and out at %s MB/s (both directions counted).",
		spreadOf(idle).cell(""), sizeName(sz.BigFile), spreadOf(sampled).cell(""), spreadOf(bigRate).cell(""))
	return nil
}

type memoryResult struct {
	hwm, idle, sampled float64 // MiB
	took               time.Duration
}

// memoryPass runs one file through a fresh ferry and reads its peak RSS.
func memoryPass(ctx context.Context, e *env, pool *pgxpool.Pool, dbURL string, size int64, seed int) (memoryResult, error) {
	var res memoryResult
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, 0, "bench")})
	if err != nil {
		return res, err
	}
	defer p.stop()
	_, idle, err := memory(p.pid())
	if err != nil {
		return res, err
	}
	rctx, cancel := context.WithTimeout(ctx, e.cfg.Sizes.RunTimeout)
	defer cancel()
	if seed == 0 {
		stopProf := e.prof.start("memory-"+strings.ReplaceAll(sizeName(size), " ", ""), p)
		defer stopProf()
	}
	sampler := sampleRSS(p.pid())
	delivered := e.sink.expect(1)
	start := time.Now()
	id, err := p.upload(rctx, "bench", "big.bin", newPRNGReader(byte(seed), size), size)
	if err == nil {
		select {
		case <-delivered:
		case <-rctx.Done():
			err = fmt.Errorf("waiting for the delivery: %w; see %s", rctx.Err(), p.logPath)
		}
	}
	if err == nil {
		_, err = p.waitSuccess(rctx, []string{id}, 10*time.Millisecond)
	}
	res.took = time.Since(start)
	peak := sampler.stop()
	if err != nil {
		return res, err
	}
	if seed == 0 {
		e.prof.heap("memory-"+strings.ReplaceAll(sizeName(size), " ", ""), p)
	}
	hwm, _, err := memory(p.pid())
	const mib = 1 << 20
	res.hwm, res.idle, res.sampled = float64(hwm)/mib, float64(idle)/mib, float64(peak)/mib
	return res, err
}
