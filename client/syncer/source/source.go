// Package source names what ferry sync reads documents from: a local
// folder or an S3 prefix, seen as a flat set of files keyed by their
// slash-separated path relative to the source's root. That path is the
// document's key at the target.
package source

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrGone means the source's root itself is missing or unreadable (an
// unmounted drive, a deleted bucket): an error of the whole scan, never a
// reason to delete every document.
var ErrGone = errors.New("source is gone")

// Entry is one file of a source, as a listing sees it.
type Entry struct {
	// Path is slash-separated and relative to the root: the document key.
	Path    string
	Size    int64
	ModTime time.Time
	// Inode identifies a local file across renames (0 where unknown).
	Inode uint64
	// ETag is the object's ETag on S3 ("" for local files).
	ETag string
}

// Source is a tree of files that sync keeps a target in step with.
type Source interface {
	// Walk calls fn for every file under the root that is not skipped,
	// in no promised order. A root that is gone is ErrGone (wrapped).
	Walk(ctx context.Context, fn func(Entry) error) error
	// Stat looks at one file again; a file that is no longer there is an
	// error matching fs.ErrNotExist.
	Stat(ctx context.Context, path string) (Entry, error)
	// Open returns the file's bytes and the entry as seen when opened.
	Open(ctx context.Context, path string) (io.ReadCloser, Entry, error)
	// String names the source for messages and for the state's identity
	// (a cleaned absolute path, or s3://bucket/prefix at an endpoint);
	// it never holds a credential.
	String() string
}
