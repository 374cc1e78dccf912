package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferry-relay/ferry/internal/natsserver"
)

// scaleShape is one installation of the scaling curve.
type scaleShape struct{ apis, workers int }

func (s scaleShape) String() string {
	return fmt.Sprintf("%d API + %d worker process%s", s.apis, s.workers, map[bool]string{true: "es"}[s.workers > 1])
}

// scaleShapes are the points of the curve: 1, 2 and 3 worker processes
// behind one API, then 3 workers behind 2 APIs.
var scaleShapes = []scaleShape{{1, 1}, {1, 2}, {1, 3}, {2, 3}}

// scaleScenario measures end-to-end throughput of 4 KiB files as ferry
// scales out: separate `ferry api` and `ferry worker` processes on one
// NATS server (embedded in the benchmark), one Postgres database, one
// MinIO, and the benchmark's loopback target, which is never the limit
// (16 delivery slots per worker process). The ratio is to 1 API + 1
// worker in the same repetition. Under the table, CPU per job by
// component shows which one a flat part of the curve is waiting on.
func scaleScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	n, size, conc := sz.SmallJobs, sz.SmallFile, sz.E2EConcurrency
	dir, err := os.MkdirTemp(e.tmp, "nats-")
	if err != nil {
		return err
	}
	nats, err := natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		return err
	}
	defer nats.Shutdown()
	rates := make([][]float64, len(scaleShapes))
	cpu := make([]map[string]float64, len(scaleShapes))
	for r := range e.cfg.Reps {
		for k := range scaleShapes {
			i := (k + r) % len(scaleShapes) // rotate the order between repetitions
			shape := scaleShapes[i]
			d, spent, err := scaleRun(ctx, e, nats.URL(), shape, n, size, conc)
			if err != nil {
				return fmt.Errorf("scale %s: %w", shape, err)
			}
			rates[i] = append(rates[i], float64(n)/d.Seconds())
			if cpu[i] == nil {
				cpu[i] = map[string]float64{}
			}
			for g, v := range spent {
				cpu[i][g] += v
			}
			e.cfg.progress("scale %s: %d files in %s", shape, n, d.Round(time.Millisecond))
		}
	}
	for i, shape := range scaleShapes {
		rep.add(row{Figure: fmt.Sprintf("scaling: end to end 4 KiB files, %s (vs 1 API + 1 worker)", shape), Unit: "jobs/s",
			Ferry: spreadOf(rates[i]), Raw: spreadOf(rates[0]), Ratio: spreadOf(ratios(rates[i], rates[0]))})
	}
	var b strings.Builder
	b.WriteString("CPU split, scaling curve (CPU ms per 4 KiB job, summed over the repetitions; bench: the clients, the target and the NATS server, all in the benchmark process; postgres: the backends serving the benchmark's database; minio: shared with anything else using it):\n\n")
	groups := []string{"ferry api", "ferry worker", "bench", "postgres", "minio"}
	b.WriteString("| installation | " + strings.Join(groups, " | ") + " | total |\n|---|" + strings.Repeat("---|", len(groups)+1) + "\n")
	for i, shape := range scaleShapes {
		jobs := float64(n * e.cfg.Reps)
		total := 0.0
		fmt.Fprintf(&b, "| %s |", shape)
		for _, g := range groups {
			total += cpu[i][g]
			fmt.Fprintf(&b, " %s |", num(cpu[i][g]*1000/jobs))
		}
		fmt.Fprintf(&b, " %s |\n", num(total*1000/jobs))
	}
	rep.details = append(rep.details, b.String())
	rep.note("Scaling: separate ferry api and ferry worker processes on one NATS server, Postgres database and MinIO; %d uploaders spread over the API processes; the target has %d delivery slots per worker process and answers at once.", conc, conc)
	return nil
}

// scaleRun starts one installation on a fresh database, pushes n files
// through it and returns the time from the first upload to the last
// SUCCESS, and the CPU each component spent meanwhile.
func scaleRun(ctx context.Context, e *env, natsURL string, shape scaleShape, n int, size int64, conc int) (time.Duration, map[string]float64, error) {
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return 0, nil, err
	}
	defer pool.Close()
	// Up to five processes on a Postgres shared with the benchmark and
	// others: 10 connections each (ferry's default is 20).
	dbURL += map[bool]string{true: "&", false: "?"}[strings.Contains(dbURL, "?")] + "pool_max_conns=10"
	targets := targetsYAML(e.sink.url, conc, "bench")
	var apis, workers []*ferryProc
	defer func() {
		for _, p := range append(apis, workers...) {
			p.stop()
		}
	}()
	key := ""
	for range shape.apis {
		p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "api", natsURL: natsURL, targets: targets, key: key})
		if err != nil {
			return 0, nil, err
		}
		apis, key = append(apis, p), p.key
	}
	for range shape.workers {
		p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "worker", natsURL: natsURL, targets: targets, key: key})
		if err != nil {
			return 0, nil, err
		}
		workers = append(workers, p)
	}
	rctx, cancel := context.WithTimeout(ctx, e.cfg.Sizes.RunTimeout)
	defer cancel()
	before := cpuSnapshot(rctx, pool, 0)
	procsBefore := procTimes(apis, workers)
	delivered := e.sink.expect(n)
	ids := make([]string, n)
	var next atomic.Int64
	start := time.Now()
	_, err = runParallel(rctx, conc, n, func(ctx context.Context, i int) error {
		p := apis[int(next.Add(1))%len(apis)]
		id, err := p.upload(ctx, "bench", fmt.Sprintf("f%d.bin", i), newBlockReader(i, size), size)
		ids[i] = id
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-delivered:
	case <-rctx.Done():
		return 0, nil, fmt.Errorf("waiting for deliveries: %w; see %s", rctx.Err(), workers[0].logPath)
	}
	end, err := apis[0].waitSuccess(rctx, ids, 5*time.Millisecond)
	if err != nil {
		return 0, nil, err
	}
	spent := map[string]float64(cpuSnapshot(rctx, pool, 0).sub(before))
	after := procTimes(apis, workers)
	spent["ferry api"] = after[0] - procsBefore[0]
	spent["ferry worker"] = after[1] - procsBefore[1]
	return end.Sub(start), spent, nil
}

// procTimes is the CPU seconds the API processes and the worker processes
// have used so far.
func procTimes(apis, workers []*ferryProc) [2]float64 {
	var out [2]float64
	for k, ps := range [][]*ferryProc{apis, workers} {
		for _, p := range ps {
			out[k] += procSecs(p.pid())
		}
	}
	return out
}

// procSecs is a process's user+system CPU seconds, from /proc/<pid>/stat.
func procSecs(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	st := string(b)
	closing := strings.LastIndexByte(st, ')')
	if closing < 0 {
		return 0
	}
	f := strings.Fields(st[closing+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}
