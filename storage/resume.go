package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// resumeLimit is how many times one read of a stored file picks up again
// after the connection to storage broke.
const resumeLimit = 5

// resumingReader reads a stored object and, when the response breaks off
// (a MinIO server behind a load balancer died, a drive failed mid-request),
// asks again for the rest only: a ranged GET from the offset reached, on
// the same version of the object (If-Match on its ETag), so the bytes that
// follow are the same object's whichever server answers. A delivery reading
// it sees one unbroken stream.
type resumingReader struct {
	ctx    context.Context
	core   minio.Core
	bucket string
	key    string
	etag   string
	size   int64

	body    io.ReadCloser
	off     int64
	resumes int
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		n, err := r.body.Read(p)
		r.off += int64(n)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && r.off >= r.size:
			return n, io.EOF
		case n > 0:
			// The break shows again on the next read.
			return n, nil
		}
		if errors.Is(err, io.EOF) {
			// The server closed the response short of the object.
			err = io.ErrUnexpectedEOF
		}
		if rerr := r.resume(err); rerr != nil {
			return 0, rerr
		}
	}
}

// resume replaces the broken response by the rest of the object.
func (r *resumingReader) resume(cause error) error {
	if r.ctx.Err() != nil || r.resumes >= resumeLimit {
		return r.failed(cause, nil)
	}
	r.resumes++
	_ = r.body.Close()
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(r.etag); err != nil {
		return fmt.Errorf("get %s: %w", r.key, err)
	}
	if err := opts.SetRange(r.off, 0); err != nil {
		return fmt.Errorf("get %s: %w", r.key, err)
	}
	delay := 100 * time.Millisecond
	for {
		body, _, _, err := r.core.GetObject(r.ctx, r.bucket, r.key, opts)
		if err == nil {
			r.body = body
			return nil
		}
		if isNotFound(err) || r.ctx.Err() != nil || r.resumes >= resumeLimit {
			r.body = io.NopCloser(eofReader{})
			return r.failed(cause, err)
		}
		r.resumes++
		t := time.NewTimer(delay)
		select {
		case <-r.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay *= 2
	}
}

// failed is the error of a read that could not go on: cause broke the
// response, and err, if not nil, failed the last ranged GET. Storage that
// stopped answering is ErrUnavailable, as in Store.Open.
func (r *resumingReader) failed(cause, err error) error {
	last := cause
	if err != nil {
		last = err
		// Only err is wrapped: callers decide on why the resume failed
		// (not found, canceled); the cause is context for the reader.
		cause = fmt.Errorf("after %v: %w", cause, err) //nolint:errorlint // see above
	}
	if r.ctx.Err() == nil && !isNotFound(last) && unavailable(last) {
		return fmt.Errorf("get %s at byte %d: %w: %w", r.key, r.off, ErrUnavailable, cause)
	}
	return fmt.Errorf("get %s at byte %d: %w", r.key, r.off, cause)
}

func (r *resumingReader) Close() error { return r.body.Close() }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
