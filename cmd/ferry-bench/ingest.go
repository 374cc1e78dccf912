package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/storage"
)

// ingestScenario compares ferry's POST /v1/uploads (bytes into MinIO, job
// recorded and enqueued) with minio-go's PutObject of the same bytes.
//
// ferry runs as `ferry api` with NATS embedded in this process, so that no
// worker delivers the files while they are being measured in: delivery is
// what the end-to-end figures measure.
func ingestScenario(ctx context.Context, e *env, rep *report) error {
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
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "api", natsURL: nats.URL(),
		targets: targetsYAML(e.sink.url, 0, "bench")})
	if err != nil {
		return err
	}
	defer p.stop()

	sz := e.cfg.Sizes
	size := sz.IngestFile
	// The limits: minio-go PutObject of the same bytes with ferry's
	// options today (unsigned payload, 16 MiB parts), as one streamed PUT
	// (unsigned, no parts), and with its default options (signed payload).
	multipart := minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: storage.PartSizeDefault, DisableContentSha256: true}
	stream := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true, DisableMultipart: true}
	signed := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	raw := func(opts minio.PutObjectOptions) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			_, err := e.s3.PutObject(ctx, e.cfg.Bucket, "raw/"+uuid.NewString(), newBlockReader(i, size), size, opts)
			return err
		}
	}
	viaFerry := func(ctx context.Context, i int) error {
		_, err := p.upload(ctx, "bench", fmt.Sprintf("file-%d.bin", i), newBlockReader(i, size), size)
		return err
	}
	type variant struct {
		name string
		f    func(ctx context.Context, i int) error
		out  []float64
	}
	var detail strings.Builder
	fmt.Fprintf(&detail, "Ingest, every variant (MB/s, median (min–max)):\n\n| concurrency | ferry | PutObject, ferry's options (unsigned, 16 MiB parts) | PutObject, one streamed PUT (unsigned) | PutObject, default options (signed) |\n|---|---|---|---|---|\n")
	for _, c := range sz.concurrencies() {
		n := sz.IngestFiles[c]
		vs := []*variant{{name: "raw-multipart", f: raw(multipart)}, {name: "raw-stream", f: raw(stream)},
			{name: "raw-signed", f: raw(signed)}, {name: "ferry", f: viaFerry}}
		for r := range e.cfg.Reps {
			for k := range vs {
				v := vs[(k+r)%len(vs)] // rotate the order between repetitions
				rctx, cancel := context.WithTimeout(ctx, sz.RunTimeout)
				var proc *ferryProc
				if v.name == "ferry" {
					proc = p
				}
				stopProf := func() {}
				if r == 0 {
					stopProf = e.prof.start(fmt.Sprintf("ingest-c%d-%s", c, v.name), proc)
				}
				d, err := runParallel(rctx, c, n, v.f)
				stopProf()
				cancel()
				if err != nil {
					return fmt.Errorf("%s, concurrency %d: %w", v.name, c, err)
				}
				v.out = append(v.out, mbps(int64(n)*size, d))
				e.cfg.progress("ingest c=%d %s: %.0f MB/s", c, v.name, v.out[len(v.out)-1])
				if err := e.emptyBucket(ctx); err != nil {
					return err
				}
			}
		}
		// The limit of each repetition is its fastest raw variant.
		best := make([]float64, e.cfg.Reps)
		for r := range best {
			best[r] = max(vs[0].out[r], vs[1].out[r], vs[2].out[r])
		}
		fer := vs[3].out
		rep.add(row{Figure: fmt.Sprintf("ingest %s files, concurrency %d (vs fastest PutObject)", sizeName(size), c),
			Unit: "MB/s", Ferry: spreadOf(fer), Raw: spreadOf(best), Ratio: spreadOf(ratios(fer, best)), Goal: goal{kind: "ratio>=", x: 0.9}})
		fmt.Fprintf(&detail, "| %d | %s | %s | %s | %s |\n", c, spreadOf(fer).cell(""), spreadOf(vs[0].out).cell(""),
			spreadOf(vs[1].out).cell(""), spreadOf(vs[2].out).cell(""))
	}
	rep.details = append(rep.details, detail.String())
	rep.note("Ingest: ferry is `ferry api` (NATS embedded in the benchmark) so that no delivery runs during the figure; a request ends at the 202, once the bytes are in MinIO and the job is recorded in Postgres and published to JetStream. The limit of each repetition is the fastest of three minio-go PutObject variants of the same bytes (see the ingest table below); all read a plain io.Reader, as ferry reads a request body.")
	return nil
}

// ratios pairs the values of the same repetition.
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]/b[i])
	}
	return out
}
