package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// file is one file the harness uploads. Its bytes are derived from the run's
// seed and its index, so they are made again, not kept, for each attempt.
type file struct {
	idx     int
	name    string
	target  string
	size    int
	sha256  string
	trickle bool // sent slowly, so that an API kill cuts it mid-body
	// doc, with Config.Versions, is the document the file is version
	// version of (1 first); "" for a file without one.
	doc     string
	version int
}

// content returns the file's bytes.
func (f file) content(seed uint64) []byte {
	b := make([]byte, f.size)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(f.idx))
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// makeFiles draws the run's files: sizes from 0 to maxBytes, a share for
// the refusing and the slow target, a share sent slowly.
func makeFiles(n, maxBytes int, seed uint64, refuseShare, slowShare, trickleShare float64) []file {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	files := make([]file, n)
	for i := range files {
		f := file{idx: i, name: fmt.Sprintf("chaos-%05d.bin", i), target: targetOK}
		switch r := rng.Float64(); {
		case r < refuseShare:
			f.target = targetRefuse
		case r < refuseShare+slowShare:
			f.target = targetSlow
		}
		f.size = drawSize(rng, maxBytes)
		f.trickle = rng.Float64() < trickleShare
		sum := sha256.Sum256(f.content(seed))
		f.sha256 = hex.EncodeToString(sum[:])
		files[i] = f
	}
	return files
}

// idempotencyKey is the Idempotency-Key of the file's upload attempts of
// generation gen, one per version of a document ("#" is ferry's own:
// jobs.CheckIdempotencyKey).
func (f file) idempotencyKey(gen int) string {
	if f.doc != "" {
		return fmt.Sprintf("%s.v%d.gen%d", f.name, f.version, gen)
	}
	return fmt.Sprintf("%s.gen%d", f.name, gen)
}

// drawSize draws a file's size: 5% empty, 15% up to 1 KiB, the rest up to
// maxBytes.
func drawSize(rng *rand.Rand, maxBytes int) int {
	switch r := rng.IntN(20); {
	case r == 0:
		return 0
	case r < 4:
		return 1 + rng.IntN(1024)
	default:
		return rng.IntN(maxBytes + 1)
	}
}

// accepted is what the API answered for a file.
type accepted struct {
	jobID string
	key   string // the Idempotency-Key that was accepted
}

// cutUpload is an upload attempt that failed before its whole body was
// handed to the connection.
type cutUpload struct {
	key  string
	file int
	at   time.Time
	err  string
}

// uploader sends files to ferry's API the way a careful client would: with
// an Idempotency-Key, retrying on connection errors and 5xx, on the next API
// process when there are several. A retry keeps
// the key once a whole body was sent under it (the API may have recorded
// the job before it died) and takes a new one while none was (the API
// cannot have): those dropped keys must never have a job.
type uploader struct {
	apis   []string
	key    string
	seed   uint64
	client *http.Client

	failedAttempts atomic.Int64
	mu             sync.Mutex
	cut            []cutUpload // uploads cut mid-body
	rejected       map[int]string
	results        map[int]accepted
}

func newUploader(apis []string, key string, seed uint64) *uploader {
	return &uploader{apis: apis, key: key, seed: seed,
		client:   &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		rejected: map[int]string{}, results: map[int]accepted{}}
}

// run uploads files with n clients, paced to spread them over spread, and
// returns when every file is accepted or ctx ends.
func (u *uploader) run(ctx context.Context, files []file, n int, spread time.Duration) {
	next := make(chan file)
	go func() {
		defer close(next)
		gap := spread / time.Duration(max(len(files), 1))
		start := time.Now()
		for i, f := range files {
			if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
				if !sleepCtx(ctx, d) {
					return
				}
			}
			select {
			case next <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for f := range next {
				u.upload(ctx, f)
			}
		})
	}
	wg.Wait()
	u.client.CloseIdleConnections()
}

// upload sends one file until the API accepts or refuses it.
func (u *uploader) upload(ctx context.Context, f file) {
	data := f.content(u.seed)
	gen := 0
	sent := false // whether the whole body went out under the current key
	delay := 100 * time.Millisecond
	api := f.idx % len(u.apis)
	for ctx.Err() == nil {
		key := f.idempotencyKey(gen)
		status, jobID, complete, err := u.send(ctx, u.apis[api], f, data, key)
		sent = sent || complete
		switch {
		case err == nil && (status == http.StatusAccepted || status == http.StatusOK):
			u.mu.Lock()
			u.results[f.idx] = accepted{jobID: jobID, key: key}
			u.mu.Unlock()
			return
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			u.mu.Lock()
			u.rejected[f.idx] = fmt.Sprintf("HTTP %d", status)
			u.mu.Unlock()
			return
		}
		u.failedAttempts.Add(1)
		if err != nil {
			api = (api + 1) % len(u.apis) // that API may be gone: try another
		}
		// A key under which the whole body never went out cannot have a
		// job: drop it for a new one, and check at the end that it has
		// none. A key under which it did may have one: keep it.
		if err != nil && !sent && ctx.Err() == nil {
			u.mu.Lock()
			u.cut = append(u.cut, cutUpload{key: key, file: f.idx, at: time.Now(), err: err.Error()})
			u.mu.Unlock()
			gen++
		}
		if !sleepCtx(ctx, delay) {
			return
		}
		delay = min(2*delay, time.Second)
	}
}

// send makes one attempt. complete says whether the whole body was handed
// to the connection.
func (u *uploader) send(ctx context.Context, api string, f file, data []byte, key string) (status int, jobID string, complete bool, err error) {
	b := &body{data: data}
	if f.trickle {
		b.chunk, b.pause = 8<<10, 15*time.Millisecond
	}
	q := url.Values{"target": {f.target}, "filename": {f.name}, "batch": {"chaos"}}
	if f.doc != "" {
		q.Set("document", f.doc)
		q.Set("sha256", f.sha256)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v1/uploads?"+q.Encode(), b)
	if err != nil {
		return 0, "", false, err
	}
	req.ContentLength = int64(len(data))
	if len(data) == 0 {
		req.Body = http.NoBody
		b.complete.Store(true)
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Idempotency-Key", key)
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, "", b.complete.Load(), err
	}
	defer resp.Body.Close()
	var out struct {
		Jobs []struct {
			ID string `json:"id"`
		} `json:"jobs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, "", b.complete.Load(), fmt.Errorf("HTTP %d, reading answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
		if len(out.Jobs) != 1 {
			return 0, "", true, fmt.Errorf("HTTP %d with %d jobs", resp.StatusCode, len(out.Jobs))
		}
		jobID = out.Jobs[0].ID
	}
	return resp.StatusCode, jobID, b.complete.Load(), nil
}

// body is an upload body that can be sent slowly and says whether all of it
// was read.
type body struct {
	data     []byte
	off      int
	chunk    int
	pause    time.Duration
	complete atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		b.complete.Store(true)
		return 0, io.EOF
	}
	if b.chunk > 0 {
		if b.off > 0 {
			time.Sleep(b.pause)
		}
		p = p[:min(len(p), b.chunk)]
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	if b.off >= len(b.data) {
		b.complete.Store(true)
	}
	return n, nil
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
