// Package s3source is an S3 prefix, on any S3-compatible service (MinIO,
// AWS S3, ...), seen by ferry sync as a source.Source: every object under
// the prefix is a file whose path is its key without the prefix.
//
// A Walk lists the prefix with ListObjectsV2, page by page (minio-go
// follows the continuation tokens), so a listing of any size holds one
// page in memory. What S3 shows is what sync sees: an object being written
// is not listed until its upload is complete (a PUT is atomic, and a
// multipart upload in progress is not an object: ListObjectsV2 does not
// show it), so nothing is ever read half-written. Keys ending in "/" are
// the "directory markers" consoles create, not files, and are skipped.
//
// Notifications (see Source.Events) only shorten the wait between two
// listings: the listing stays the authority, since bucket notifications
// are lost (a NATS subscriber that is away misses them) and repeated by
// design.
//
// An Entry's ETag and size say whether an object changed (an overwrite
// at the same size has a new ETag); its ModTime is kept to the second, the
// resolution of a HEAD, so that Walk, Stat and Open agree. Inode is 0.
//
// ferry's own bucket, where it keeps uploads between their arrival and
// their delivery, is never a source: New and Check refuse a bucket that
// holds ferry's stored files, keys "objects/<job id>" (ErrFerryBucket).
// ferry writes no other marker in its bucket (its installation id lives
// in Postgres), so a ferry bucket still empty cannot be told apart; Walk
// refuses the bucket as soon as it lists one of ferry's keys.
//
// Credentials are never printed: not by String, not in errors, not by a
// Config formatted with %v or logged with slog.
package s3source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferry-relay/ferry/client/syncer/source"
)

// EndpointDefault is AWS S3, the endpoint of a Config that names none.
const EndpointDefault = "s3.amazonaws.com"

// PageSizeDefault is the number of keys a listing asks for per request:
// S3's maximum.
const PageSizeDefault = 1000

// Config says which prefix of which bucket, where, with which credentials.
type Config struct {
	// Endpoint is host[:port], or an http(s):// URL (whose scheme then
	// decides Secure). EndpointDefault if empty.
	Endpoint string
	Bucket   string
	// Prefix is the folder synced; "" is the whole bucket. It is taken as
	// a folder: "docs" and "docs/" both mean the keys under "docs/" (never
	// "docs2/...").
	Prefix string
	// AccessKey and SecretKey (and SessionToken, for temporary
	// credentials); all empty means anonymous requests (a public bucket).
	AccessKey    string
	SecretKey    string
	SessionToken string
	// Secure is HTTPS. An Endpoint given as a URL overrides it.
	Secure bool
	// Region, for services that insist on it; found out if empty.
	Region string
	// Skip says what is not a document (source.Skip's rules): true skips
	// the file, or every file under the directory. Keys have no
	// directories on S3: a key is skipped when Skip says so of it or of
	// any of its parent folders. Nil skips nothing.
	Skip func(rel string, isDir bool) bool
	// PageSize is the number of keys per listing request;
	// PageSizeDefault if zero.
	PageSize int
	// Transport carries the requests; minio-go's default if nil.
	Transport http.RoundTripper
	// Log receives warnings (keys that cannot be paths, notifications
	// that cannot be read); nothing is logged if nil.
	Log *slog.Logger
}

// String describes the config without its credentials.
func (c Config) String() string {
	return "s3://" + c.Bucket + "/" + c.prefix() + " at " + c.endpointURL()
}

// GoString is String: %#v never prints a credential either.
func (c Config) GoString() string { return c.String() }

// LogValue is String for slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// prefix is the normalized prefix: no leading "/", a trailing "/" unless
// it is the whole bucket.
func (c Config) prefix() string {
	p := strings.TrimLeft(c.Prefix, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// endpoint returns host[:port] and whether to use HTTPS.
func (c Config) endpoint() (string, bool) {
	e := c.Endpoint
	if e == "" {
		return EndpointDefault, true
	}
	if u, err := url.Parse(e); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Host, u.Scheme == "https"
	}
	return strings.TrimSuffix(e, "/"), c.Secure
}

func (c Config) endpointURL() string {
	host, secure := c.endpoint()
	if secure {
		return "https://" + host
	}
	return "http://" + host
}

// ErrFerryBucket means the bucket holds ferry's own stored files: syncing
// it would feed ferry its own uploads.
var ErrFerryBucket = errors.New("the bucket is ferry's own storage")

// Source is an S3 prefix as a source.Source. It is safe for concurrent
// use.
type Source struct {
	client *minio.Client
	// transport is the one the Source made (nil if Config gave one).
	transport *http.Transport
	cfg       Config
	prefix    string
	log       *slog.Logger
}

var _ source.Source = (*Source)(nil)

// New connects to the bucket and checks it (see Check): a bucket that
// does not exist is source.ErrGone, one holding ferry's objects is
// ErrFerryBucket.
func New(ctx context.Context, cfg Config) (*Source, error) {
	s, err := newSource(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newSource builds the client without asking the service anything.
func newSource(cfg Config) (*Source, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 source: no bucket")
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = PageSizeDefault
	}
	host, secure := cfg.endpoint()
	var own *http.Transport
	if cfg.Transport == nil {
		tr, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("s3 source %s: transport: %w", cfg, err)
		}
		own, cfg.Transport = tr, tr
	}
	client, err := minio.New(host, &minio.Options{
		// Empty keys sign nothing: anonymous requests.
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		// minio.New's errors name the endpoint, never the keys.
		return nil, fmt.Errorf("s3 source %s: %w", cfg, err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{client: client, transport: own, cfg: cfg, prefix: cfg.prefix(), log: log}, nil
}

// Close releases the idle connections to the service (those of a
// Config.Transport given are the caller's). The Source is not used after.
func (s *Source) Close() {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
}

// String names the source: s3://bucket/prefix/ at the endpoint's URL. It
// holds no credential.
func (s *Source) String() string { return s.cfg.String() }

// Check asks the service whether the bucket exists (source.ErrGone if
// not), whether the prefix can be listed, and whether the bucket is
// ferry's own (ErrFerryBucket).
func (s *Source) Check(ctx context.Context) error {
	if err := s.probe(ctx); err != nil {
		return err
	}
	return s.refuseFerryBucket(ctx)
}

// probe lists the first key of the prefix: the bucket exists and the
// prefix is readable. It is a listing rather than a HEAD of the bucket,
// which credentials limited to a prefix may not be allowed.
func (s *Source) probe(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, MaxKeys: 1, FetchOwner: &noOwner}
	for obj := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return s.wrap("check bucket", obj.Err)
		}
		break
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: check bucket: %w", s, err)
	}
	return nil
}

// wrap names the source and the act in err, and turns a missing bucket
// into source.ErrGone.
func (s *Source) wrap(act string, err error) error {
	if bucketMissing(err) {
		return fmt.Errorf("%s: %s: bucket %s does not exist: %w", s, act, s.cfg.Bucket, source.ErrGone)
	}
	return fmt.Errorf("%s: %s: %w", s, act, err)
}

func bucketMissing(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code == minio.NoSuchBucket
}

func accessDenied(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code == "AccessDenied"
}

// keyMissing reports an answer "no such object". A HEAD has no body to
// tell a missing key from a missing bucket: minio-go calls every 404 of
// an object NoSuchKey, so the caller checks the bucket (see Stat).
func keyMissing(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code != minio.NoSuchBucket &&
		(er.Code == minio.NoSuchKey || er.StatusCode == http.StatusNotFound)
}
