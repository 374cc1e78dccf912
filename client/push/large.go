package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// Large files go through an upload session (client.UploadLarge): in
// parts, ParallelParts at once, the SHA-256 computed while the parts are
// read (one read of the file), and resumable: the session's key comes from
// the batch, the path, the size and the modification time, so the same
// command after an interruption finds the session on the server (no local
// state) and sends only the parts it is missing. With Documents, the
// session names the file's document, as a single request would.

// Defaults of large-file uploads.
const (
	SessionThresholdDefault = 64 << 20
	ParallelPartsDefault    = 4
)

// isLarge says whether f goes through a session.
func (p *pusher) isLarge(f File) bool {
	return p.o.SessionThreshold > 0 && f.Size >= p.o.SessionThreshold
}

// oneLarge sends a large file through its upload session.
func (p *pusher) oneLarge(ctx context.Context, f File) {
	fh, err := os.Open(f.Local)
	if err != nil {
		p.toSend.Add(-f.Size)
		p.fail(f, ProblemUnreadable, err)
		return
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		p.toSend.Add(-f.Size)
		p.fail(f, ProblemUnreadable, err)
		return
	}
	if st.Size() != f.Size { // it changed since the walk: send what it holds now
		p.toSend.Add(st.Size() - f.Size)
		f.Size = st.Size()
	}
	key := Key(p.res.Batch, f.Path, "session:"+strconv.FormatInt(f.Size, 10)+":"+strconv.FormatInt(st.ModTime().UnixNano(), 10))
	job, err := p.sendLarge(ctx, f, fh, key)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.toSend.Add(-f.Size)
		p.fail(f, problemKind(err), err)
		return
	}
	p.uploaded.Add(1)
	p.done.Add(1)
	p.event(FileResult{Path: f.Path, Outcome: OutcomeUploaded, JobID: job.ID})
}

func (p *pusher) sendLarge(ctx context.Context, f File, fh *os.File, key string) (apitypes.Job, error) {
	u := client.Upload{Target: p.res.Target, Batch: p.res.Batch, Filename: f.Filename, Path: f.Path,
		Params: f.Params, IdempotencyKey: key, Size: f.Size}
	if p.o.Documents {
		u.Document = f.Path
	}
	job, _, err := p.c.UploadLarge(ctx, client.LargeUpload{
		Upload: u,
		File:   fh, Parallel: p.o.ParallelParts, Attempts: p.o.UploadAttempts,
		Sent: func(n int64) { p.sent.Add(n) },
		Session: func(ss apitypes.UploadSession) {
			// Parts received before (a resumed session) need no sending.
			var have int64
			for _, part := range ss.Received {
				have += part.Size
			}
			p.toSend.Add(-have)
		},
	})
	if err != nil {
		return apitypes.Job{}, fmt.Errorf("upload session: %w", err)
	}
	return job, nil
}

// problemKind says what kind of problem an upload's error is.
func problemKind(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && !ce.Temporary() {
		if ce.StatusCode == http.StatusRequestEntityTooLarge {
			return ProblemTooLarge
		}
		return ProblemRefused
	}
	return ProblemFailed
}
