// Package storage keeps uploaded files in S3-compatible object storage
// (MinIO) between their upload and their delivery.
//
// Object keys are ferry's own ("objects/<job id>"), never derived from a
// user's filename. Bytes stream in both directions: Put reads its input once,
// in parts, while computing the SHA-256 and size; Open returns a reader over
// the stored object, or, in a process that delivers what it receives
// (ferry serve), over the copy it kept of a small file it just stored
// (recent.go).
package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PartSizeDefault is the part size of multipart uploads: the memory one
// large upload holds in flight. 8 MiB parts allow objects up to 80 GB
// (S3's 10,000 parts).
const PartSizeDefault = 8 << 20

// smallObjectMax is the size up to which a file is read into a pooled buffer
// and stored with one PUT. Larger or unknown-length files stream as a
// multipart upload: without this, every small file of unknown length would
// cost three requests (initiate, part, complete) and a part-size buffer.
const smallObjectMax = 1 << 20

var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallObjectMax+1); return &b }}

// maxSinglePut is the largest object S3 accepts in one PUT.
const maxSinglePut = 5 << 30

// ErrTooLarge means an upload went over its size limit; nothing was stored.
var ErrTooLarge = errors.New("object over the size limit")

// ErrBody means reading the input of Put failed (a client's body broke
// off, timed out or was malformed): nothing was stored. It wraps the read
// error.
var ErrBody = errors.New("reading the file failed")

// ErrNotFound means there is no such object.
var ErrNotFound = errors.New("object not found")

// ErrUnavailable means object storage could not answer: unreachable, a
// timeout, a 5xx or throttling, its bucket gone, or ferry's keys refused.
// It says nothing about the object asked for; the error it wraps says why.
var ErrUnavailable = errors.New("object storage unavailable")

// Config says where the bucket is.
type Config struct {
	// Endpoint is host:port, or an http(s):// URL.
	Endpoint  string
	AccessKey string
	SecretKey string
	Bucket    string
	// PartSize of multipart uploads; PartSizeDefault if zero.
	PartSize uint64
	// RecentBytes is the memory kept for the small files this process
	// stored last, which Open then serves without a GET (see recent): for
	// a process whose workers deliver what its API receives (ferry serve).
	// Zero keeps none.
	RecentBytes int64
}

// Store is a bucket of stored files.
type Store struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
	partSize  uint64
	recent    *recent
}

// Open connects to the bucket, creating it if missing.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	endpoint, secure := cfg.Endpoint, false
	if u, err := url.Parse(cfg.Endpoint); err == nil && u.Host != "" {
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	s := &Store{client: client, transport: tr, bucket: cfg.Bucket, partSize: cfg.PartSize, recent: newRecent(cfg.RecentBytes)}
	if s.partSize == 0 {
		s.partSize = PartSizeDefault
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) ensureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{}); err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.Code == "BucketAlreadyOwnedByYou" || er.Code == "BucketAlreadyExists") {
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Client returns the underlying MinIO client, for tests and benchmarks that
// compare ferry with the raw component.
func (s *Store) Client() *minio.Client { return s.client }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Stored describes a stored object.
type Stored struct {
	Key    string
	Size   int64
	SHA256 string
}

// Put stores r under key, reading at most limit bytes: if r holds more,
// nothing is kept and ErrTooLarge is returned. size is r's length if the
// caller knows it, or -1. The SHA-256 is computed while the bytes stream.
//
// Payload signing is off (UNSIGNED-PAYLOAD): minio-go would otherwise hash
// every part a second time for the request signature, which halves the
// throughput of large uploads; integrity is checked by ferry's own SHA-256
// and the part checksums MinIO verifies.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size, limit int64, contentType string) (Stored, error) {
	if size > limit {
		return Stored{}, ErrTooLarge
	}
	s.recent.drop(key)
	h := sha256.New()
	src := &watchReader{r: r}
	lr := &limitReader{r: io.TeeReader(src, h), left: limit}
	opts := minio.PutObjectOptions{
		ContentType:          contentType,
		PartSize:             s.partSize,
		DisableContentSha256: true,
		// A known size goes in one streamed PUT: no part buffer in memory,
		// and the bytes flow on to MinIO while they arrive (a multipart
		// upload reads a whole part before sending it). Above the S3
		// single-PUT limit, or when the size is unknown, parts it is.
		DisableMultipart: size >= 0 && size <= maxSinglePut,
	}
	var body io.Reader = lr
	var whole []byte // the file, when it fits in the buffer
	if size < 0 || size <= smallObjectMax {
		// Read what fits in a small buffer: if that is the whole file, it
		// goes up in one PUT of known size.
		bp := smallBuffers.Get().(*[]byte)
		defer smallBuffers.Put(bp)
		n, end, rerr := fill(lr, *bp)
		switch {
		case lr.over:
			return Stored{}, ErrTooLarge
		case rerr != nil:
			return Stored{}, fmt.Errorf("put %s: %w: %w", key, ErrBody, rerr)
		case end:
			whole = (*bp)[:n]
			body, size = bytes.NewReader(whole), int64(n)
		default:
			body = io.MultiReader(bytes.NewReader((*bp)[:n]), lr)
		}
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, body, size, opts)
	if lr.over {
		// The upload may have completed with a truncated object; remove it.
		s.removeQuietly(key)
		return Stored{}, ErrTooLarge
	}
	if src.err != nil {
		// Whatever minio-go made of it, a broken input is never a
		// short file.
		s.removeQuietly(key)
		return Stored{}, fmt.Errorf("put %s: %w: %w", key, ErrBody, src.err)
	}
	if err != nil {
		s.removeQuietly(key)
		return Stored{}, fmt.Errorf("put %s: %w", key, err)
	}
	if whole != nil {
		s.recent.add(key, whole)
	}
	return Stored{Key: key, Size: info.Size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// fill reads into buf until it is full or r ends. end reports that r
// ended (io.EOF, and only io.EOF: an io.ErrUnexpectedEOF from r is a broken
// input, not the end of a short file, and is returned as an error).
func fill(r io.Reader, buf []byte) (n int, end bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF { // io.Reader's contract: EOF itself, never wrapped
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// watchReader keeps the first error of its reader other than io.EOF.
type watchReader struct {
	r   io.Reader
	err error
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && w.err == nil { // io.Reader's contract: EOF itself
		w.err = err
	}
	return n, err
}

func (s *Store) removeQuietly(key string) {
	s.recent.drop(key)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

// limitReader reads at most left bytes and notes when more were offered.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe for one more byte to tell "exactly at the limit" from "over".
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// Open returns a reader over the object stored under key. A response that
// breaks off mid-object is picked up where it stopped (see resumingReader).
// A small file this process stored a moment ago is read from memory (see
// Config.RecentBytes).
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if b, ok := s.recent.get(key); ok {
		opensFromMemory.Inc()
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	opensFromBucket.Inc()
	// One GET, which fails here for a missing object: Client.GetObject
	// followed by Stat would send a HEAD first.
	core := minio.Core{Client: s.client}
	body, info, _, err := core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, getError(ctx, key, err)
	}
	return &resumingReader{ctx: ctx, core: core, bucket: s.bucket, key: key, etag: info.ETag, size: info.Size, body: body}, nil
}

// Remove deletes the object stored under key. A missing object is not an
// error.
func (s *Store) Remove(ctx context.Context, key string) error {
	s.recent.drop(key)
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	return nil
}

// Close releases the store's idle connections to the object storage.
func (s *Store) Close() {
	s.recent.close()
	s.transport.CloseIdleConnections()
}

// Ping checks that the bucket is reachable and exists.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	switch {
	case err != nil:
		return fmt.Errorf("s3: %w", err)
	case !ok:
		return fmt.Errorf("s3: bucket %s does not exist", s.bucket)
	}
	return nil
}

// AbortIncomplete removes multipart uploads under prefix started more than
// olderThan ago and never completed: the leftovers of an API process that
// died mid-upload.
func (s *Store) AbortIncomplete(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	n := 0
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, prefix, true) {
		if up.Err != nil {
			return n, fmt.Errorf("list incomplete uploads: %w", up.Err)
		}
		if time.Since(up.Initiated) < olderThan {
			continue
		}
		if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, up.Key); err != nil {
			return n, fmt.Errorf("abort upload %s: %w", up.Key, err)
		}
		n++
	}
	return n, nil
}

// AbortUploadsOf aborts the multipart uploads of the objects under keys
// started more than olderThan ago: the leftovers of uploads whose request
// died (their markers say which keys). It lists each key exactly, since
// MinIO lists incomplete uploads only by an object's key, not by a prefix.
func (s *Store) AbortUploadsOf(ctx context.Context, keys []string, olderThan time.Duration) (int, error) {
	n := 0
	for _, key := range keys {
		for up := range s.client.ListIncompleteUploads(ctx, s.bucket, key, false) {
			if up.Err != nil {
				return n, fmt.Errorf("list incomplete uploads of %s: %w", key, up.Err)
			}
			if up.Key != key || time.Since(up.Initiated) < olderThan {
				continue
			}
			if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, key); err != nil {
				return n, fmt.Errorf("abort upload %s: %w", key, err)
			}
			n++
			break // RemoveIncompleteUpload aborts every upload of the key
		}
	}
	return n, nil
}

// getError turns a failed GET of key into ferry's errors: ErrNotFound for
// a missing object, ErrUnavailable when storage could not answer (unless
// the caller's ctx ended: then nothing is known of storage).
func getError(ctx context.Context, key string, err error) error {
	switch {
	case isNotFound(err):
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	case ctx.Err() == nil && unavailable(err):
		return fmt.Errorf("get %s: %w: %w", key, ErrUnavailable, err)
	}
	return fmt.Errorf("get %s: %w", key, err)
}

// isNotFound reports a missing object; a missing bucket is not one (it is
// storage's state, see unavailable).
func isNotFound(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code != "NoSuchBucket" && (er.Code == "NoSuchKey" || er.StatusCode == http.StatusNotFound)
}

// unavailable reports whether err says object storage could not answer,
// rather than anything about one object: no S3 answer at all (refused,
// reset, timed out: minio-go has already retried those), a 5xx, throttling,
// the bucket gone or ferry's keys refused. Other 4xx answers (a failed
// If-Match, a bad range) are about the object and are not.
func unavailable(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return true
	}
	switch er.Code {
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized",
		"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return true
	}
	return er.StatusCode >= http.StatusInternalServerError || er.StatusCode == http.StatusTooManyRequests ||
		er.StatusCode == http.StatusRequestTimeout
}

// KeyFor returns the object key of a job's file.
func KeyFor(jobID string) string { return "objects/" + strings.ToLower(jobID) }

// OldKeys returns up to limit keys under prefix, in key order after the key
// after, of objects last written more than olderThan ago, and the key to
// continue from ("" once the listing is complete).
func (s *Store) OldKeys(ctx context.Context, prefix, after string, olderThan time.Duration, limit int) ([]string, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var keys []string
	seen := 0
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, StartAfter: after, Recursive: true}) {
		if obj.Err != nil {
			return nil, "", fmt.Errorf("list objects: %w", obj.Err)
		}
		seen++
		if time.Since(obj.LastModified) > olderThan {
			keys = append(keys, obj.Key)
		}
		if seen >= limit {
			return keys, obj.Key, nil
		}
	}
	return keys, "", nil
}
