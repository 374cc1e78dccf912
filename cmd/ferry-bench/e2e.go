package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/jackc/pgx/v5/pgxpool"
)

// e2eSide is one pipeline of an end-to-end comparison.
type e2eSide struct {
	name string
	// proc is nil for the naive pipeline.
	proc *ferryProc
	// pool is the database whose backends count as this side's.
	pool  *pgxpool.Pool
	durs  []time.Duration
	cpu   cpuSpent
	conns int64
}

// e2eScenario compares ferry (upload through the API, delivery by its
// workers, every job SUCCESS) with the naive pipeline, the same files and
// the same concurrency on both sides: small (4 KiB, jobs/s) or large
// (1 MiB, MB/s) files. With -compare, a second ferry runs beside them.
func e2eScenario(ctx context.Context, e *env, rep *report, large bool) error {
	sz := e.cfg.Sizes
	name, size, n := "e2e-small", sz.SmallFile, sz.SmallJobs
	if large {
		name, size, n = "e2e-large", sz.LargeFile, sz.LargeJobs
	}
	conc := sz.E2EConcurrency
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	dir, err := os.MkdirTemp(e.tmp, "nats-")
	if err != nil {
		return err
	}
	nats, err := natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		return err
	}
	defer nats.Shutdown()
	nv, err := newNaive(ctx, e, pool, nats.URL(), conc)
	if err != nil {
		return err
	}
	defer nv.close()
	opts := ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, conc, "bench")}
	p, err := e.startFerry(ctx, pool, dbURL, opts)
	if err != nil {
		return err
	}
	defer p.stop()
	sides := []*e2eSide{{name: "naive", pool: pool, cpu: cpuSpent{}}, {name: "ferry", proc: p, pool: pool, cpu: cpuSpent{}}}
	if e.cfg.Compare != "" {
		poolB, urlB, err := e.freshDBFor(ctx, compareSuffix, e.cfg.Compare)
		if err != nil {
			return err
		}
		defer poolB.Close()
		opts.bin = e.cfg.Compare
		pb, err := e.startFerry(ctx, poolB, urlB, opts)
		if err != nil {
			return err
		}
		defer pb.stop()
		sides = append(sides, &e2eSide{name: "ferry-b", proc: pb, pool: poolB, cpu: cpuSpent{}})
	}
	if e.cfg.Traced {
		var cleanup []func()
		defer func() {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}()
		opts.bin = ""
		side, err := e.startTraced(ctx, opts, &cleanup)
		if err != nil {
			return err
		}
		sides = append(sides, side)
	}

	for r := range e.cfg.Reps {
		for k := range sides {
			s := sides[(k+r)%len(sides)] // rotate the order between repetitions
			rctx, cancel := context.WithTimeout(ctx, sz.RunTimeout)
			stopProf := func() {}
			if r == 0 && (s.name == "naive" || s.name == "ferry") {
				stopProf = e.prof.start(name+"-"+s.name, s.proc)
			}
			pid := 0
			if s.proc != nil {
				pid = s.proc.pid()
			}
			before, conns := cpuSnapshot(rctx, s.pool, pid), e.sink.conns.Load()
			var d time.Duration
			if s.proc == nil {
				d, err = nv.run(rctx, n, size)
			} else {
				d, err = ferryRun(rctx, e, s.proc, n, size)
			}
			for g, v := range cpuSnapshot(rctx, s.pool, pid).sub(before) {
				s.cpu[g] += v
			}
			s.conns += e.sink.conns.Load() - conns
			stopProf()
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.durs = append(s.durs, d)
			e.cfg.progress("%s %s: %d files in %s", name, s.name, n, d.Round(time.Millisecond))
		}
	}
	rate := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			if large {
				out[i] = mbps(int64(n)*size, d)
			} else {
				out[i] = float64(n) / d.Seconds()
			}
		}
		return out
	}
	unit, g := "jobs/s", goal{kind: "ratio>=", x: 0.9}
	if large {
		unit, g = "MB/s", goal{}
	}
	nvr := rate(sides[0].durs)
	for _, s := range sides[1:] {
		f := rate(s.durs)
		label := ""
		switch s.name {
		case "ferry-b":
			label, g = " [-compare "+filepath.Base(e.cfg.Compare)+"]", goal{}
		case "ferry-traced":
			label, g = " [tracing on]", goal{}
		}
		rep.add(row{Figure: fmt.Sprintf("end to end %s files (vs naive pipeline)%s", sizeName(size), label), Unit: unit,
			Ferry: spreadOf(f), Raw: spreadOf(nvr), Ratio: spreadOf(ratios(f, nvr)), Goal: g})
	}
	tracingRows(rep, sides, rate, sizeName(size)+" files", unit)
	rep.details = append(rep.details, e2eDetails(e, sides, large, size, n))
	if !large {
		rep.note("End to end: from the first upload to the last job SUCCESS (ferry: seen by polling Postgres every 5 ms once the target has every file; naive: its last update). Both sides: %d uploaders, %d delivery slots (ferry: the target's concurrency), the same loopback target (reads and hashes every byte, answers 204). The naive pipeline uses the same MinIO options as ferry and GETs every file back from MinIO; ferry serve runs with its defaults, so its workers take a file of up to 1 MiB that the process just stored from its recent-files memory (FERRY_RECENT_FILES_BYTES) instead of a GET. The naive pipeline's NATS server is embedded in the benchmark process, ferry's in ferry.", conc, conc)
	}
	return nil
}

// e2eDetails is the CPU each side spent per unit of work, and the
// connections the target saw.
func e2eDetails(e *env, sides []*e2eSide, large bool, size int64, n int) string {
	units, per := float64(n*e.cfg.Reps), "job"
	if large {
		units, per = float64(int64(n)*size*int64(e.cfg.Reps))/(1<<20), "MiB"
	}
	var names, conns []string
	runs, us := map[string]cpuSpent{}, map[string]float64{}
	for _, s := range sides {
		names = append(names, s.name)
		runs[s.name], us[s.name] = s.cpu, units
		conns = append(conns, fmt.Sprintf("%s %.1f", s.name, 100*float64(s.conns)/float64(n*e.cfg.Reps)))
	}
	return cpuTable(fmt.Sprintf("CPU split, end to end %s files", sizeName(size)), per, names, runs, us) +
		fmt.Sprintf("\nConnections the target accepted per 100 deliveries: %s.\n", strings.Join(conns, ", "))
}

// ferryRun uploads n files of size through ferry's API with conc uploaders
// and returns the time from the first upload to the moment every job is
// SUCCESS.
func ferryRun(ctx context.Context, e *env, p *ferryProc, n int, size int64) (time.Duration, error) {
	d, _, err := ferryRunKeyed(ctx, e, p, n, size, nil)
	return d, err
}

// ferryRunKeyed is ferryRun with file i naming the document key(i) when
// key is not nil; it also returns the job ids.
func ferryRunKeyed(ctx context.Context, e *env, p *ferryProc, n int, size int64, key func(i int) string) (time.Duration, []string, error) {
	delivered := e.sink.expect(n)
	ids := make([]string, n)
	start := time.Now()
	_, err := runParallel(ctx, e.cfg.Sizes.E2EConcurrency, n, func(ctx context.Context, i int) error {
		q := url.Values{"target": {"bench"}, "filename": {fmt.Sprintf("f%d.bin", i)}}
		if key != nil {
			q.Set("document", key(i))
		}
		id, err := p.uploadWith(ctx, q, http.StatusAccepted, newBlockReader(i, size), size)
		ids[i] = id
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-delivered:
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("waiting for deliveries: %w; see %s", ctx.Err(), p.logPath)
	}
	end, err := p.waitSuccess(ctx, ids, 5*time.Millisecond)
	return end.Sub(start), ids, err
}
