package s3source

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/client/syncer/source"
)

// Walk calls fn for every object under the prefix that is a file and not
// skipped, in key order, listing with ListObjectsV2 one page at a time.
// A bucket that does not exist is source.ErrGone; a listing that finds
// ferry's own stored files (the bucket became ferry's since New) is
// ErrFerryBucket.
func (s *Source) Walk(ctx context.Context, fn func(source.Entry) error) error {
	ctx, cancel := context.WithCancel(ctx) // ends the listing if fn stops it
	defer cancel()
	skip := s.newSkipper()
	invalid := 0
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, MaxKeys: s.cfg.PageSize, FetchOwner: &noOwner}
	for obj := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return s.wrap("list", obj.Err)
		}
		if isFerryKey(obj.Key) {
			return s.ferryBucketError(obj.Key)
		}
		rel, ok := s.rel(obj.Key)
		if !ok {
			if !strings.HasSuffix(obj.Key, "/") {
				invalid++
			}
			continue
		}
		if skip.skip(rel) {
			continue
		}
		if err := fn(s.entry(rel, obj)); err != nil {
			return err
		}
	}
	// minio-go ends a listing quietly when ctx ends between pages: a cut
	// listing must not pass for a whole one (its missing keys would read
	// as deleted files).
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: list: %w", s, err)
	}
	if invalid > 0 {
		s.log.Warn("s3 keys that are not paths were not synced (empty, \".\" or \"..\" segments)",
			"source", s.String(), "count", invalid)
	}
	return nil
}

// Stat looks at one object again (HEAD). An object that is not there
// matches fs.ErrNotExist; a bucket that is not there is source.ErrGone.
func (s *Source) Stat(ctx context.Context, rel string) (source.Entry, error) {
	if !fs.ValidPath(rel) || rel == "." {
		return source.Entry{}, fmt.Errorf("%s: stat %q: %w", s, rel, fs.ErrNotExist)
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.prefix+rel, minio.StatObjectOptions{})
	if err != nil {
		return source.Entry{}, s.objectError(ctx, "stat "+rel, err)
	}
	return s.entry(rel, info), nil
}

// Open streams one object (a single GET: the bytes are those of the
// returned entry's ETag). An object that is not there matches
// fs.ErrNotExist; a bucket that is not there is source.ErrGone.
func (s *Source) Open(ctx context.Context, rel string) (io.ReadCloser, source.Entry, error) {
	if !fs.ValidPath(rel) || rel == "." {
		return nil, source.Entry{}, fmt.Errorf("%s: open %q: %w", s, rel, fs.ErrNotExist)
	}
	core := minio.Core{Client: s.client}
	body, info, _, err := core.GetObject(ctx, s.cfg.Bucket, s.prefix+rel, minio.GetObjectOptions{})
	if err != nil {
		return nil, source.Entry{}, s.objectError(ctx, "open "+rel, err)
	}
	return body, s.entry(rel, info), nil
}

// objectError turns a failed HEAD or GET into the source's errors. A HEAD
// cannot tell a missing object from a missing bucket (see keyMissing), so
// a not-found asks whether the bucket is still there (probe): a deleted
// bucket must never read as "every file was deleted".
func (s *Source) objectError(ctx context.Context, act string, err error) error {
	if keyMissing(err) {
		if perr := s.probe(ctx); perr != nil {
			return perr
		}
		return fmt.Errorf("%s: %s: %w", s, act, fs.ErrNotExist)
	}
	return s.wrap(act, err)
}

// entry is the source's view of an object. ModTime is kept to the second:
// a listing gives milliseconds, a HEAD or GET only seconds, and Walk, Stat
// and Open must agree on an unchanged object.
func (s *Source) entry(rel string, obj minio.ObjectInfo) source.Entry {
	return source.Entry{
		Path:    rel,
		Size:    obj.Size,
		ModTime: obj.LastModified.Truncate(time.Second).UTC(),
		ETag:    obj.ETag,
	}
}

// rel returns the path of key relative to the prefix, and false for a key
// that is no file: a directory marker (ending in "/"), or a key that is
// not a clean relative path ("a//b", "./a", "a/../b"), which no target
// could take as a document key.
func (s *Source) rel(key string) (string, bool) {
	rel, ok := strings.CutPrefix(key, s.prefix)
	if !ok || rel == "" || strings.HasSuffix(rel, "/") || !fs.ValidPath(rel) || rel == "." {
		return "", false
	}
	return rel, true
}

// skipper applies Config.Skip to a key and its parent folders, asking
// about each folder once per run of keys in it (a listing is in key
// order, so the keys under one folder come together).
type skipper struct {
	fn      func(rel string, isDir bool) bool
	dir     string
	dirSkip bool
}

func (s *Source) newSkipper() *skipper { return &skipper{fn: s.cfg.Skip, dir: "."} }

func (k *skipper) skip(rel string) bool {
	if k.fn == nil {
		return false
	}
	if dir := path.Dir(rel); dir != k.dir {
		k.dir, k.dirSkip = dir, k.dirSkipped(dir)
	}
	return k.dirSkip || k.fn(rel, false)
}

// dirSkipped reports whether dir or one of its parents is skipped.
func (k *skipper) dirSkipped(dir string) bool {
	if dir == "." {
		return false
	}
	for i := 0; i <= len(dir); i++ {
		if i == len(dir) || dir[i] == '/' {
			if k.fn(dir[:i], true) {
				return true
			}
		}
	}
	return false
}
