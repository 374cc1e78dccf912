package s3source_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// Successive walks see new, overwritten (a new ETag, even at the same
// size) and deleted objects; an upload still in progress is not there.
func TestWalkSeesChanges(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	s := open(t, config(b.name, "in"))
	b.put(t, "in/a.txt", "version 1")
	b.put(t, "in/b.txt", "bbb")
	first := walk(t, s)
	if got := paths(first); len(got) != 2 {
		t.Fatalf("first walk: %q", got)
	}

	b.put(t, "in/a.txt", "version 2")
	b.remove(t, "in/b.txt")
	b.put(t, "in/c/d.txt", "new")
	core := minio.Core{Client: b.client}
	ctx := testenv.Context(t)
	id, err := core.NewMultipartUpload(ctx, b.name, "in/partial.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("multipart: %v", err)
	}
	part := strings.Repeat("x", 5<<20)
	if _, err := core.PutObjectPart(ctx, b.name, "in/partial.bin", id, 1, strings.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatalf("part: %v", err)
	}

	second := walk(t, s)
	if got := paths(second); strings.Join(got, ",") != "a.txt,c/d.txt" {
		t.Fatalf("second walk: %q, want a.txt and c/d.txt (b.txt deleted, partial.bin not complete)", got)
	}
	a1, a2 := first["a.txt"], second["a.txt"]
	if a1.Size != a2.Size || a1.ETag == a2.ETag {
		t.Errorf("overwritten a.txt: %+v then %+v, want the same size and a new ETag", a1, a2)
	}
	if _, err := s.Stat(ctx, "partial.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of an upload in progress: %v, want fs.ErrNotExist", err)
	}
}

// Stat and Open see what Walk sees (to the second: a listing's times are
// finer than a HEAD's); what is not there is fs.ErrNotExist.
func TestStatOpen(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	s := open(t, config(b.name, "p/"))
	b.put(t, "p/dir/a b.txt", "hello, world")
	b.put(t, "p/dir/", "")
	b.put(t, "outside.txt", "x")
	ctx := testenv.Context(t)
	listed := walk(t, s)["dir/a b.txt"]

	st, err := s.Stat(ctx, "dir/a b.txt")
	if err != nil || st != listed {
		t.Fatalf("stat: %+v, %v; walk saw %+v", st, err, listed)
	}
	rc, opened, err := s.Open(ctx, "dir/a b.txt")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	body, err := io.ReadAll(rc)
	if cerr := rc.Close(); err != nil || cerr != nil || string(body) != "hello, world" || opened != listed {
		t.Fatalf("open read %q (%v, %v) as %+v; walk saw %+v", body, err, cerr, opened, listed)
	}

	for _, p := range []string{"missing.txt", "dir", "dir/", "", ".", "../outside.txt", "/dir/a b.txt", "dir//a b.txt"} {
		if _, err := s.Stat(ctx, p); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, source.ErrGone) {
			t.Errorf("stat %q: %v, want fs.ErrNotExist", p, err)
		}
		if _, _, err := s.Open(ctx, p); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, source.ErrGone) {
			t.Errorf("open %q: %v, want fs.ErrNotExist", p, err)
		}
	}
}

// A bucket that does not exist, or no longer does, is source.ErrGone for
// every operation: never an empty listing, never "this file was deleted".
func TestGone(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	if _, err := s3source.New(ctx, config(testenv.S3Config().Bucket, "")); !isGone(err) {
		t.Fatalf("new on a missing bucket: %v, want source.ErrGone", err)
	}

	b := newBucket(t)
	s := open(t, config(b.name, "docs"))
	b.put(t, "docs/a.txt", "a")
	b.remove(t, "docs/a.txt")
	if err := b.client.RemoveBucket(ctx, b.name); err != nil {
		t.Fatalf("remove bucket: %v", err)
	}
	err := s.Walk(ctx, func(e source.Entry) error {
		t.Errorf("walk of a removed bucket saw %+v", e)
		return nil
	})
	if !isGone(err) {
		t.Errorf("walk: %v, want source.ErrGone", err)
	}
	if _, err := s.Stat(ctx, "a.txt"); !isGone(err) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat: %v, want source.ErrGone and not fs.ErrNotExist", err)
	}
	if _, _, err := s.Open(ctx, "a.txt"); !isGone(err) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open: %v, want source.ErrGone and not fs.ErrNotExist", err)
	}
	if err := s.Check(ctx); !isGone(err) {
		t.Errorf("check: %v, want source.ErrGone", err)
	}
}

// Walk returns fn's error as it is, and a listing cut short by its
// context is an error, never a shorter listing.
func TestWalkStops(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	b.put(t, "a", "a")
	b.put(t, "b", "b")
	s := open(t, config(b.name, ""))
	stop := errors.New("stop")
	n := 0
	err := s.Walk(testenv.Context(t), func(source.Entry) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("walk: %v after %d entries, want the callback's error after 1", err, n)
	}
	ctx, cancel := context.WithCancel(testenv.Context(t))
	cancel()
	if err := s.Walk(ctx, func(source.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("walk with a canceled context: %v", err)
	}
}
