package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/internal/ctxio"
)

// upload learns what the batch holds already, and sends the rest,
// Concurrency files at a time. An existing batch is checked first (same
// target and parameters); a new one is made only when the first file is
// about to be sent (ensureBatch).
func (p *pusher) upload(ctx context.Context) error {
	p.accepted = map[string]bool{}
	_, err := p.c.Batch(ctx, p.res.Batch)
	switch {
	case client.IsNotFound(err):
		// A new batch: nothing accepted yet, made with the first file.
	case err != nil:
		return fmt.Errorf("asking for batch %q: %w", p.res.Batch, err)
	default:
		if err := p.ensureBatch(ctx); err != nil {
			return err
		}
		if err := p.c.BatchKeys(ctx, p.res.Batch, func(k string) { p.accepted[k] = true }); err != nil {
			return fmt.Errorf("asking which files batch %q holds already: %w", p.res.Batch, err)
		}
	}
	for _, f := range p.files {
		p.toSend.Add(f.Size)
	}
	p.failed.Store(int64(p.res.Files - len(p.files))) // set aside by the checks

	stop := p.showProgress(func(m meter) { m.upload(p.uploadState()) })
	queue := make(chan File)
	var wg sync.WaitGroup
	for range p.o.Concurrency {
		wg.Go(func() {
			for f := range queue {
				p.one(ctx, f)
			}
		})
	}
feed:
	for _, f := range p.files {
		select {
		case <-ctx.Done():
			break feed
		case queue <- f:
		}
	}
	close(queue)
	wg.Wait()
	stop()
	if p.batchErr != nil {
		return p.batchErr
	}
	if ctx.Err() != nil {
		r := p.result()
		printUploads(p.o.Out, r)
		return fmt.Errorf("%w: %d of %d files accepted in batch %q; run the same command again to resume",
			ErrInterrupted, r.Uploaded+r.Skipped, len(p.files), r.Batch)
	}
	return nil
}

// ensureBatch makes the batch object, or checks that the existing one has
// the push's target and parameters, once.
func (p *pusher) ensureBatch(ctx context.Context) error {
	p.batchMu.Lock()
	defer p.batchMu.Unlock()
	if p.batchMade || p.batchErr != nil {
		return p.batchErr
	}
	_, _, err := p.c.CreateBatch(ctx, apitypes.Batch{Name: p.res.Batch, Target: p.res.Target, Params: p.o.Params})
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.StatusCode == http.StatusConflict:
		p.batchErr = fmt.Errorf("%s: push it with the same --target and --param as before, or name another --batch", ce.Message)
	case err != nil && ctx.Err() == nil:
		p.batchErr = err
	case err != nil:
		return err // interrupted: not an answer about the batch
	default:
		p.batchMade = true
	}
	return p.batchErr
}

// uploadState is a snapshot of the counters.
func (p *pusher) uploadState() uploadState {
	return uploadState{Files: int64(p.res.Files), Done: p.done.Load() + int64(p.res.Files-len(p.files)),
		Skipped: p.skipped.Load(), Failed: p.failed.Load(), Sent: p.sent.Load(), ToSend: p.toSend.Load()}
}

// showProgress calls show with the meter until the returned stop is
// called, which draws the last state.
func (p *pusher) showProgress(show func(meter)) (stop func()) {
	if p.o.Progress == nil {
		return func() {}
	}
	if p.meter == nil {
		if p.o.Terminal {
			p.meter = newBarMeter(p.o.Progress)
		} else {
			p.meter = newLineMeter(p.o.Progress, p.o.LineInterval)
		}
	}
	every := barRefreshInterval
	if !p.o.Terminal {
		every = min(p.o.LineInterval, time.Second)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			show(p.meter)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		show(p.meter)
		p.meter.end()
	}
}

// one hashes a file, skips it if the batch holds it already, and sends
// it otherwise, declaring its SHA-256 (and, with Documents, its document
// key). A file that changed between its hash and its sending is refused
// by the server (its bytes do not match the SHA-256 declared): it is
// hashed and sent once more, as it is now.
func (p *pusher) one(ctx context.Context, f File) {
	if p.isLarge(f) {
		p.oneLarge(ctx, f)
		return
	}
	for try := 1; ; try++ {
		sum, ok := p.hash(ctx, &f)
		if !ok {
			return
		}
		key := Key(p.res.Batch, f.Path, sum)
		if p.accepted[key] {
			p.toSend.Add(-f.Size)
			p.skipped.Add(1)
			p.done.Add(1)
			p.event(FileResult{Path: f.Path, Outcome: OutcomeSkipped})
			return
		}
		if err := p.ensureBatch(ctx); err != nil {
			if ctx.Err() == nil {
				p.toSend.Add(-f.Size)
				p.fail(f, ProblemFailed, err)
			}
			return
		}
		job, created, err := p.send(ctx, f, key, sum)
		if ctx.Err() != nil {
			return
		}
		if err != nil && try == 1 && p.changedSince(ctx, f, sum, err) {
			continue // hash counts its new size
		}
		p.sent1(f, job, created, sum, err)
		return
	}
}

// hash hashes f and updates its size; false when it cannot be read (a
// problem recorded) or ctx ended.
func (p *pusher) hash(ctx context.Context, f *File) (string, bool) {
	sum, n, err := hashFile(ctx, f.Local)
	if ctx.Err() != nil {
		return "", false // interrupted: neither done nor failed
	}
	if err != nil {
		p.toSend.Add(-f.Size)
		p.fail(*f, ProblemUnreadable, err)
		return "", false
	}
	if n != f.Size { // it changed since the walk: send what it holds now
		p.toSend.Add(n - f.Size)
		f.Size = n
	}
	return sum, true
}

// changedSince reports whether an upload refused with 400 was refused
// because the file no longer has the content sum declared.
func (p *pusher) changedSince(ctx context.Context, f File, sum string, err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest {
		return false
	}
	now, _, herr := hashFile(ctx, f.Local)
	return herr == nil && now != sum
}

// sent1 counts what became of a file sent: accepted (uploaded; or, with
// Documents, already accepted when the server answered with an earlier
// job: the document's latest version has this content) or failed.
func (p *pusher) sent1(f File, job apitypes.Job, created bool, sum string, err error) {
	if err != nil {
		p.toSend.Add(-f.Size)
		p.fail(f, problemKind(err), err)
		return
	}
	if job.SHA256 != "" && job.SHA256 != sum {
		p.problem(Problem{Path: f.Path, Kind: ProblemChanged, Err: fmt.Sprintf(
			"the file changed while it was sent: job %s holds content %s, not %s", job.ID, job.SHA256, sum)})
	}
	p.done.Add(1)
	if p.o.Documents && !created {
		p.skipped.Add(1)
		p.event(FileResult{Path: f.Path, Outcome: OutcomeSkipped, JobID: job.ID})
		return
	}
	p.uploaded.Add(1)
	p.event(FileResult{Path: f.Path, Outcome: OutcomeUploaded, JobID: job.ID})
}

func (p *pusher) fail(f File, kind string, err error) {
	p.problem(Problem{Path: f.Path, Kind: kind, Err: err.Error()})
	p.failed.Add(1)
	p.done.Add(1)
	p.event(FileResult{Path: f.Path, Outcome: OutcomeFailed, Err: err.Error()})
}

func (p *pusher) event(r FileResult) {
	if p.o.OnFile != nil {
		p.o.OnFile(r)
	}
}

// send uploads a file, again after a failure of the connection or a
// temporary answer, up to UploadAttempts times. The idempotency key makes
// a repeat harmless.
func (p *pusher) send(ctx context.Context, f File, key, sum string) (apitypes.Job, bool, error) {
	backoff := uploadBackoffInitial
	for attempt := 1; ; attempt++ {
		job, created, n, err := p.sendOnce(ctx, f, key, sum)
		if err == nil {
			return job, created, nil
		}
		p.sent.Add(-n) // what was sent of a failed attempt does not count
		if attempt >= p.o.UploadAttempts || !client.Retryable(ctx, err) {
			return apitypes.Job{}, false, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return apitypes.Job{}, false, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, uploadBackoffMax)
	}
}

// sendOnce makes one upload request and returns how many bytes it sent.
func (p *pusher) sendOnce(ctx context.Context, f File, key, sum string) (apitypes.Job, bool, int64, error) {
	fh, err := os.Open(f.Local)
	if err != nil {
		return apitypes.Job{}, false, 0, err
	}
	defer fh.Close()
	body := &countingReader{r: io.LimitReader(fh, f.Size), total: &p.sent}
	u := client.Upload{
		Target: p.res.Target, Batch: p.res.Batch, Filename: f.Filename, Path: f.Path,
		Params: f.Params, IdempotencyKey: key, SHA256: sum, Body: body, Size: f.Size,
	}
	if p.o.Documents {
		u.Document = f.Path
	}
	job, created, err := p.c.Upload(ctx, u)
	return job, created, body.n, err
}

// countingReader adds what it reads to a shared total.
type countingReader struct {
	r     io.Reader
	n     int64
	total *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.total.Add(int64(n))
	return n, err
}

// hashFile returns the hex SHA-256 of a file's content and its size.
func hashFile(ctx context.Context, name string) (string, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxio.Reader(ctx, f))
	if err != nil {
		return "", n, fmt.Errorf("reading: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
