package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/jackc/pgx/v5"
)

// latencyScenario measures, on an otherwise idle ferry, the time from the
// start of an upload to its delivery: when the target has read the whole file,
// and when the job is SUCCESS in Postgres (its finished_at). Uploads go one
// at a time, each after the previous job is SUCCESS. The naive pipeline,
// measured the same way, is the reference.
func latencyScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, 0, "bench")})
	if err != nil {
		return err
	}
	defer p.stop()
	dir, err := os.MkdirTemp(e.tmp, "nats-")
	if err != nil {
		return err
	}
	nats, err := natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		return err
	}
	defer nats.Shutdown()
	nv, err := newNaive(ctx, e, pool, nats.URL(), 4)
	if err != nil {
		return err
	}
	defer nv.close()

	rc := e.sink.watch()
	var fDeliv, fDone, nDeliv, nDone latencies
	for r := range e.cfg.Reps {
		stopProf := func() {}
		if r == 0 {
			stopProf = e.prof.start("latency-ferry", p)
		}
		deliv, done, err := ferryLatency(ctx, e, p, rc, sz.LatencySamples)
		stopProf()
		if err != nil {
			return err
		}
		fDeliv.add(deliv)
		fDone.add(done)
		deliv, done, err = naiveLatency(ctx, e, nv, rc, sz.LatencySamples)
		if err != nil {
			return err
		}
		nDeliv.add(deliv)
		nDone.add(done)
		e.cfg.progress("latency: p50 to SUCCESS: ferry %.1f ms, naive %.1f ms", fDone.p50[r], nDone.p50[r])
	}
	rep.add(
		row{Figure: "upload started → job SUCCESS, idle, p50 (vs naive pipeline)", Unit: "ms", Ferry: spreadOf(fDone.p50), Raw: spreadOf(nDone.p50),
			Ratio: spreadOf(ratios(fDone.p50, nDone.p50)), Goal: goal{kind: "value<", x: 50, unit: "ms"}},
		row{Figure: "upload started → job SUCCESS, idle, p99 (vs naive pipeline)", Unit: "ms", Ferry: spreadOf(fDone.p99), Raw: spreadOf(nDone.p99),
			Ratio: spreadOf(ratios(fDone.p99, nDone.p99))},
		row{Figure: "upload started → target has the bytes, idle, p50 (vs naive pipeline)", Unit: "ms", Ferry: spreadOf(fDeliv.p50), Raw: spreadOf(nDeliv.p50),
			Ratio: spreadOf(ratios(fDeliv.p50, nDeliv.p50))},
		row{Figure: "upload started → target has the bytes, idle, p99 (vs naive pipeline)", Unit: "ms", Ferry: spreadOf(fDeliv.p99), Raw: spreadOf(nDeliv.p99),
			Ratio: spreadOf(ratios(fDeliv.p99, nDeliv.p99))},
	)
	rep.note("Latency: %d sequential 4 KiB uploads per repetition, each after the previous job is SUCCESS; \"started\" is the client starting the upload (naive: its PUT to MinIO; from the 202 the figure can be negative, as a worker may finish a 4 KiB job before the client has read the answer), \"SUCCESS\" is the job's finished_at in Postgres (naive: its update returning), \"has the bytes\" is the target having read the whole body. ferry's target has its default 4 delivery slots, the naive pipeline 4 delivery goroutines.", sz.LatencySamples)
	return nil
}

// latencies collects per-repetition percentiles.
type latencies struct{ p50, p99 []float64 }

func (l *latencies) add(xs []float64) {
	l.p50 = append(l.p50, percentile(xs, 50))
	l.p99 = append(l.p99, percentile(xs, 99))
}

// ferryLatency times n sequential uploads (after two unmeasured ones) and
// returns the milliseconds from the upload's start to the target's receipt
// and to SUCCESS. (From the 202 it can be negative: the worker may finish a
// small file before the client has read the answer.)
func ferryLatency(ctx context.Context, e *env, p *ferryProc, rc <-chan receipt, n int) (deliv, done []float64, err error) {
	const size = 4 << 10
	for i := range n + 2 {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		started := time.Now()
		id, err := p.upload(rctx, "bench", fmt.Sprintf("l%d.bin", i), newBlockReader(i, size), size)
		var rcpt receipt
		var finished time.Time
		if err == nil {
			rcpt, err = waitReceipt(rctx, rc, id)
		}
		if err == nil {
			finished, err = finishedAt(rctx, p, id)
		}
		cancel()
		if err != nil {
			return nil, nil, err
		}
		if i >= 2 {
			deliv = append(deliv, ms(rcpt.at.Sub(started)))
			done = append(done, ms(finished.Sub(started)))
		}
	}
	return deliv, done, nil
}

// finishedAt polls the job every millisecond until it is SUCCESS and returns
// its finished_at.
func finishedAt(ctx context.Context, p *ferryProc, id string) (time.Time, error) {
	for {
		var status string
		var fin *time.Time
		err := p.pool.QueryRow(ctx, `SELECT status, finished_at FROM jobs WHERE id = $1`, id).Scan(&status, &fin)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return time.Time{}, err
		}
		if status == "SUCCESS" && fin != nil {
			return *fin, nil
		}
		if status == "FAILED" || status == "CANCELED" {
			return time.Time{}, fmt.Errorf("job %s ended %s; see %s", id, status, p.logPath)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("job %s not SUCCESS (%s): %w", id, status, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// naiveLatency is ferryLatency for the naive pipeline.
func naiveLatency(ctx context.Context, e *env, nv *naive, rc <-chan receipt, n int) (deliv, done []float64, err error) {
	const size = 4 << 10
	updated := make(chan receipt, 16)
	stop, err := nv.startDelivery(ctx, func(id string, at time.Time) {
		updated <- receipt{id: id, at: at}
	})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if serr := stop(); err == nil {
			err = serr
		}
	}()
	for i := range n + 2 {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		started := time.Now()
		id, err := nv.upload(rctx, i, size)
		var rcpt, upd receipt
		if err == nil {
			rcpt, err = waitReceipt(rctx, rc, id)
		}
		if err == nil {
			upd, err = waitReceipt(rctx, updated, id)
		}
		cancel()
		if err != nil {
			return nil, nil, err
		}
		if i >= 2 {
			deliv = append(deliv, ms(rcpt.at.Sub(started)))
			done = append(done, ms(upd.at.Sub(started)))
		}
	}
	return deliv, done, nil
}
