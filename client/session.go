package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/hashchain"
)

// LargeUpload is one large file to send through an upload session: in
// numbered parts, several at once, resumable. The same IdempotencyKey
// finds the session again after an interruption, and only the parts the
// server is missing are sent.
type LargeUpload struct {
	Upload
	// File is read from the start, once, in order: each part is read
	// into a buffer, hashed, then sent.
	File io.Reader
	// Parallel is how many parts are in flight at once (4 if zero); the
	// client holds Parallel+1 part buffers.
	Parallel int
	// Attempts bounds the sends of one part (5 if zero).
	Attempts int
	// Sent, when set, is told the bytes of each part sent.
	Sent func(n int64)
	// Session, when set, is told the session once it is known.
	Session func(apitypes.UploadSession)
}

// StartSession creates an upload session, or finds the one its
// Idempotency-Key started.
func (c *Client) StartSession(ctx context.Context, in apitypes.NewUploadSession, key string) (apitypes.UploadSession, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return apitypes.UploadSession{}, fmt.Errorf("start session: %w", err)
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		header.Set("Idempotency-Key", key)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/uploads/sessions", nil, bytes.NewReader(b), int64(len(b)), header)
	if err != nil {
		return apitypes.UploadSession{}, err
	}
	defer resp.Body.Close()
	var out apitypes.UploadSession
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("start session: reading the answer: %w", err)
	}
	return out, nil
}

// Session returns where an upload session stands.
func (c *Client) Session(ctx context.Context, id string) (apitypes.UploadSession, error) {
	var out apitypes.UploadSession
	_, err := c.call(ctx, http.MethodGet, sessionPath(id), nil, nil, &out)
	return out, err
}

// AbortSession aborts an upload session.
func (c *Client) AbortSession(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, sessionPath(id), nil, nil, nil)
	return err
}

// PutPart sends part n; chain is the SHA-256 state before it ("" for
// none: the server then reads the file back at completion).
func (c *Client) PutPart(ctx context.Context, id string, n int, part []byte, chain string) error {
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	if chain != "" {
		header.Set("X-Part-SHA256-Chain", chain)
	}
	var body io.Reader = http.NoBody
	if len(part) > 0 {
		body = io.NopCloser(bytes.NewReader(part))
	}
	resp, err := c.do(ctx, http.MethodPut, sessionPath(id)+"/parts/"+strconv.Itoa(n), nil, body, int64(len(part)), header)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// CompleteSession completes a session and returns its job; created is
// false when it had been completed before.
func (c *Client) CompleteSession(ctx context.Context, id, sha string) (apitypes.Job, bool, error) {
	var out apitypes.UploadResult
	code, err := c.call(ctx, http.MethodPost, sessionPath(id)+"/complete", nil,
		apitypes.CompleteUploadSession{SHA256: sha}, &out)
	if err != nil {
		return apitypes.Job{}, false, err
	}
	if len(out.Jobs) != 1 {
		return apitypes.Job{}, false, fmt.Errorf("complete session %s: %d jobs in the answer", id, len(out.Jobs))
	}
	return out.Jobs[0], code == http.StatusAccepted, nil
}

func sessionPath(id string) string { return "/v1/uploads/sessions/" + url.PathEscape(id) }

// UploadLarge sends a file through an upload session and returns its job.
func (c *Client) UploadLarge(ctx context.Context, u LargeUpload) (apitypes.Job, bool, error) {
	ss, err := c.openSession(ctx, u)
	if err != nil {
		return apitypes.Job{}, false, err
	}
	if u.Session != nil {
		u.Session(ss)
	}
	if ss.State == "completed" {
		j, err := c.Job(ctx, ss.Job)
		return j, false, err
	}
	sum, err := c.sendParts(ctx, ss, u)
	if err != nil {
		return apitypes.Job{}, false, err
	}
	return c.CompleteSession(ctx, ss.ID, sum)
}

// openSession starts the session, or takes the key's session back; an
// expired one is aborted and started anew.
func (c *Client) openSession(ctx context.Context, u LargeUpload) (apitypes.UploadSession, error) {
	in := apitypes.NewUploadSession{Target: u.Target, Batch: u.Batch, Filename: u.Filename, Path: u.Path,
		Params: u.Params, Size: u.Size, Document: u.Document}
	ss, err := c.StartSession(ctx, in, u.IdempotencyKey)
	if err != nil || ss.State != "expired" {
		return ss, err
	}
	if err := c.AbortSession(ctx, ss.ID); err != nil {
		return ss, err
	}
	return c.StartSession(ctx, in, u.IdempotencyKey)
}

// part is one part read and hashed, waiting for a sender.
type part struct {
	n     int
	buf   *[]byte
	data  []byte
	chain string
}

// sendParts reads the file once, in order, hashing every byte into the
// chain, and hands the parts the server lacks to Parallel senders. It
// returns the file's SHA-256.
func (c *Client) sendParts(ctx context.Context, ss apitypes.UploadSession, u LargeUpload) (string, error) {
	parallel := max(u.Parallel, 1)
	if u.Parallel == 0 {
		parallel = 4
	}
	have := make(map[int]bool, len(ss.Received))
	for _, p := range ss.Received {
		have[p.N] = true
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pool := sync.Pool{New: func() any { b := make([]byte, ss.PartSize); return &b }}
	work := make(chan part)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for p := range work {
				if err := c.sendPart(ctx, ss.ID, p, u); err != nil {
					cancel(err)
				}
				pool.Put(p.buf)
			}
		})
	}
	h := sha256.New()
	err := readParts(ctx, ss, u.File, h, func(p part) bool {
		if have[p.n] {
			pool.Put(p.buf)
			return true
		}
		select {
		case work <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}, &pool)
	close(work)
	wg.Wait()
	if cerr := context.Cause(ctx); cerr != nil {
		return "", cerr
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readParts reads the file's parts in order into pooled buffers, hashing
// each, and gives each to take with the chain state before it.
func readParts(ctx context.Context, ss apitypes.UploadSession, r io.Reader, h hash.Hash, take func(part) bool, pool *sync.Pool) error {
	for n := 1; n <= ss.Parts; n++ {
		size := ss.PartSize
		if n == ss.Parts {
			size = ss.Size - int64(ss.Parts-1)*ss.PartSize
		}
		chain, err := hashchain.State(h)
		if err != nil {
			return err
		}
		buf := pool.Get().(*[]byte)
		data := (*buf)[:size]
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("reading part %d: %w (the file changed while it was sent?)", n, err)
		}
		h.Write(data)
		if ctx.Err() != nil || !take(part{n: n, buf: buf, data: data, chain: chain}) {
			return ctx.Err()
		}
	}
	return nil
}

// sendPart sends one part, again after a temporary failure.
func (c *Client) sendPart(ctx context.Context, id string, p part, u LargeUpload) error {
	attempts := u.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := 500 * time.Millisecond
	for a := 1; ; a++ {
		err := c.PutPart(ctx, id, p.n, p.data, p.chain)
		if err == nil {
			if u.Sent != nil {
				u.Sent(int64(len(p.data)))
			}
			return nil
		}
		if a >= attempts || !Retryable(ctx, err) {
			return fmt.Errorf("part %d: %w", p.n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
