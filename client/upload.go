package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/ferry-relay/ferry/apitypes"
)

// Upload is one file to upload.
type Upload struct {
	// Target may be empty when Batch names a batch object.
	Target string
	Batch  string
	// Filename is the name the target gets.
	Filename string
	// Path is the client's path of the file, kept for the batch report.
	Path   string
	Params map[string]string
	// IdempotencyKey makes a repeated upload return the first one's job.
	IdempotencyKey string
	// Document, when set, is the key of the document this file is a new
	// version of, at the target (query document; at most 1,024 bytes of
	// UTF-8 without control characters). Upload sessions (UploadLarge)
	// carry none yet.
	Document string
	// SHA256, when set, is the hex SHA-256 of the body (query sha256):
	// the server checks the bytes against it and, for a document whose
	// latest version has that content, answers before reading the body.
	SHA256 string
	// Body holds exactly Size bytes. Upload does not close it.
	Body io.Reader
	Size int64
}

// Upload sends one file as a raw body and returns its job. created is
// false when the idempotency key had been used, or when the document's
// latest version has the same content: the job is the earlier one.
func (c *Client) Upload(ctx context.Context, u Upload) (job apitypes.Job, created bool, err error) {
	q := url.Values{"filename": {u.Filename}}
	for k, v := range map[string]string{"target": u.Target, "batch": u.Batch, "path": u.Path,
		"document": u.Document, "sha256": u.SHA256} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range u.Params {
		q.Set("param."+k, v)
	}
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	if u.IdempotencyKey != "" {
		header.Set("Idempotency-Key", u.IdempotencyKey)
	}
	var body io.Reader = http.NoBody
	if u.Size > 0 {
		body = io.NopCloser(u.Body) // the transport closes bodies; the caller owns this one
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/uploads", q, body, u.Size, header)
	if err != nil {
		return apitypes.Job{}, false, err
	}
	defer resp.Body.Close()
	var out apitypes.UploadResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return apitypes.Job{}, false, fmt.Errorf("upload of %q: unexpected answer: %w", u.Filename, err)
	}
	if len(out.Jobs) != 1 {
		return apitypes.Job{}, false, fmt.Errorf("upload of %q: unexpected answer: %d jobs, want 1", u.Filename, len(out.Jobs))
	}
	return out.Jobs[0], resp.StatusCode == http.StatusAccepted, nil
}
