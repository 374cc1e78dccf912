package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// Multipart uploads driven by the client (upload sessions): the API opens
// one, streams each part the client sends straight into UploadPart (no
// temporary disk, no whole part in memory), and completes it with the parts
// Postgres recorded. Unlike Put, the parts may come in any order, through
// any API process.

// MaxParts is S3's limit on the parts of one multipart upload.
const MaxParts = 10000

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// MaxPartSize is S3's largest part.
const MaxPartSize = 5 << 30

// ErrNoUpload means the multipart upload is gone: completed, aborted or
// never there.
var ErrNoUpload = errors.New("no such multipart upload")

// CompletedPart is a part to assemble: its number and the ETag S3 gave it.
type CompletedPart struct {
	N    int
	ETag string
}

func (s *Store) core() minio.Core { return minio.Core{Client: s.client} }

// NewMultipart opens a multipart upload of key and returns its upload id.
func (s *Store) NewMultipart(ctx context.Context, key, contentType string) (string, error) {
	id, err := s.core().NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return "", fmt.Errorf("open multipart upload of %s: %w", key, err)
	}
	return id, nil
}

// PutPart streams part n of exactly size bytes from r into the upload and
// returns its ETag. A short r is ErrBody: S3 keeps no part.
func (s *Store) PutPart(ctx context.Context, key, uploadID string, n int, r io.Reader, size int64) (string, error) {
	src := &watchReader{r: r}
	part, err := s.core().PutObjectPart(ctx, s.bucket, key, uploadID, n, src, size,
		minio.PutObjectPartOptions{DisableContentSha256: true})
	if src.err != nil {
		return "", fmt.Errorf("part %d of %s: %w: %w", n, key, ErrBody, src.err)
	}
	if err != nil {
		if isNoUpload(err) {
			return "", ErrNoUpload
		}
		return "", fmt.Errorf("part %d of %s: %w", n, key, err)
	}
	return part.ETag, nil
}

// CompleteMultipart assembles the parts, in order, into the object key.
// ErrNoUpload means the upload is gone: it may have been completed before
// (see Stat).
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) error {
	cps := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cps[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
	}
	_, err := s.core().CompleteMultipartUpload(ctx, s.bucket, key, uploadID, cps, minio.PutObjectOptions{})
	if isNoUpload(err) {
		return ErrNoUpload
	}
	if err != nil {
		return fmt.Errorf("complete multipart upload of %s: %w", key, err)
	}
	return nil
}

// AbortMultipart aborts an upload and drops its parts; an upload already
// gone is not an error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	err := s.core().AbortMultipartUpload(ctx, s.bucket, key, uploadID)
	if err != nil && !isNoUpload(err) {
		return fmt.Errorf("abort multipart upload of %s: %w", key, err)
	}
	return nil
}

// Size returns the size of the object key; ErrNotFound if there is none.
func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if isNotFound(err) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	return info.Size, nil
}

func isNoUpload(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "NoSuchUpload"
}
