package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/natsserver"
)

// sessionsScenario measures large files through upload sessions (issue
// 23): `ferry push` with its default settings (parts of 16 MiB, 4 in
// flight, the SHA-256 computed while the parts are read and proven by the
// hash chain) against minio-go's parallel multipart PutObject of the same
// file, in the same run; then 8 files at once against 8 raw puts at once,
// with the API process's RSS while it receives them.
func sessionsScenario(ctx context.Context, e *env, rep *report) error {
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	dir, err := os.MkdirTemp(e.tmp, "sessions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nats, err := natsserver.Start(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		return err
	}
	defer nats.Shutdown()
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "api", natsURL: nats.URL(),
		targets: targetsYAML(e.sink.url, 0, "bench")})
	if err != nil {
		return err
	}
	defer p.stop()
	sz := e.cfg.Sizes
	one := filepath.Join(dir, "one")
	if err := writeFiles(one, 1, sz.SessionFile); err != nil {
		return err
	}
	eight := filepath.Join(dir, "eight")
	if err := writeFiles(eight, 8, sz.SessionFile/4); err != nil {
		return err
	}
	if err := sessionFigure(ctx, e, rep, p, one, 1, sz.SessionFile); err != nil {
		return err
	}
	if err := sessionFigure(ctx, e, rep, p, eight, 8, sz.SessionFile/4); err != nil {
		return err
	}
	rep.note("Sessions: `ferry push` of the files with its defaults (files of 64 MiB or more go as upload sessions: 16 MiB parts, 4 in flight per file, the SHA-256 computed while reading and proven by the parts' hash chain, no read-back), against the faster of minio-go PutObject from the file (parallel multipart, 16 MiB parts, 4 threads per file, unsigned payload) and with its default options, at the same number of files at once. The push's time holds its start (walk, batch) and the completions; the RSS is the `ferry api` process's, idle and at its peak while 8 files' parts arrive.")
	return nil
}

// writeFiles writes n files of size bytes under dir.
func writeFiles(dir string, n int, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("file-%d.bin", i)))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, newBlockReader(100+i, size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sessionFigure measures n files of size under dir: ferry push against the
// raw puts, Reps times, and the API's RSS.
func sessionFigure(ctx context.Context, e *env, rep *report, p *ferryProc, dir string, n int, size int64) error {
	var fer, raw, peaks []float64
	_, idle, err := memory(p.pid())
	if err != nil {
		return err
	}
	for r := range e.cfg.Reps {
		rctx, cancel := context.WithTimeout(ctx, e.cfg.Sizes.RunTimeout)
		rd, err := rawPuts(rctx, e, dir, n, size)
		if err != nil {
			cancel()
			return fmt.Errorf("raw puts: %w", err)
		}
		if err := e.emptyBucket(ctx); err != nil {
			cancel()
			return err
		}
		rss := sampleRSS(p.pid())
		fd, err := pushDir(rctx, e, p, dir, fmt.Sprintf("sessions-%d-%d", n, r))
		peak := rss.stop()
		cancel()
		if err != nil {
			return fmt.Errorf("ferry push: %w", err)
		}
		if err := e.emptyBucket(ctx); err != nil {
			return err
		}
		total := int64(n) * size
		fer, raw = append(fer, mbps(total, fd)), append(raw, mbps(total, rd))
		peaks = append(peaks, float64(peak-idle)/(1<<20))
		e.cfg.progress("sessions %d×%s: push %.0f MB/s, raw %.0f MB/s, API RSS +%.0f MiB", n, sizeName(size),
			fer[len(fer)-1], raw[len(raw)-1], peaks[len(peaks)-1])
	}
	rep.add(row{Figure: fmt.Sprintf("upload sessions: %d × %s through ferry push (vs raw parallel PutObject)", n, sizeName(size)),
		Unit: "MB/s", Ferry: spreadOf(fer), Raw: spreadOf(raw), Ratio: spreadOf(ratios(fer, raw)), Goal: goal{kind: "ratio>=", x: 0.9}})
	if n > 1 {
		rep.add(row{Figure: fmt.Sprintf("upload sessions: API RSS above idle while %d files' parts arrive", n),
			Unit: "MiB", Ferry: spreadOf(peaks), Goal: goal{kind: "value<", x: 64, unit: "MiB"}})
	}
	return nil
}

// rawPuts puts the n files of dir at once with the faster of two
// minio-go options, and returns the time of the faster.
func rawPuts(ctx context.Context, e *env, dir string, n int, size int64) (time.Duration, error) {
	parallel := minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: 16 << 20, NumThreads: 4,
		DisableContentSha256: true}
	def := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	var best time.Duration
	for _, opts := range []minio.PutObjectOptions{parallel, def} {
		began := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				f, err := os.Open(filepath.Join(dir, fmt.Sprintf("file-%d.bin", i)))
				if err != nil {
					errs[i] = err
					return
				}
				defer f.Close()
				_, errs[i] = e.s3.PutObject(ctx, e.cfg.Bucket, "raw/"+uuid.NewString(), f, size, opts)
			})
		}
		wg.Wait()
		d := time.Since(began)
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		if best == 0 || d < best {
			best = d
		}
		if err := e.emptyBucket(ctx); err != nil {
			return 0, err
		}
	}
	return best, nil
}

// pushDir runs `ferry push DIR` with its defaults against p and returns
// its time.
func pushDir(ctx context.Context, e *env, p *ferryProc, dir, batch string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, e.cfg.FerryBin, "push", dir, "--target", "bench", "--batch", batch,
		"--concurrency", "8", "--progress", "none")
	cmd.Env = append(os.Environ(), "FERRY_SERVER="+p.url, "FERRY_API_KEY="+p.key)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w\n%s", err, out)
	}
	return time.Since(began), nil
}
