package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/storage"
)

func TestPutLimitsAndHashes(t *testing.T) {
	t.Parallel()
	s := testenv.Storage(t)
	ctx := testenv.Context(t)
	data := bytes.Repeat([]byte{7}, 1000)
	sum := sha256.Sum256(data)
	tests := []struct {
		name  string
		size  int64
		limit int64
		err   error
	}{
		{"unknown size under the limit", -1, 2000, nil},
		{"unknown size at the limit", -1, 1000, nil},
		{"unknown size over the limit", -1, 999, storage.ErrTooLarge},
		{"known size over the limit", 1000, 999, storage.ErrTooLarge},
		{"known size", 1000, 1000, nil},
	}
	for _, tc := range tests {
		key := "objects/" + tc.name
		st, err := s.Put(ctx, key, bytes.NewReader(data), tc.size, tc.limit, "application/pdf")
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if tc.err != nil {
			if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: a refused upload left an object (%v)", tc.name, err)
			}
			continue
		}
		if st.Size != 1000 || st.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: stored %d bytes %s", tc.name, st.Size, st.SHA256)
		}
		r, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes", tc.name, len(got))
		}
		if err := s.Remove(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "objects/never-there"); err != nil {
		t.Errorf("removing a missing object: %v", err)
	}
}

// An abandoned multipart upload (the API died mid-upload) is aborted by its
// object key, which MinIO lists (it does not list uploads by a prefix that
// is not an object's key); a young one is kept.
func TestAbortAbandonedMultipartUpload(t *testing.T) {
	t.Parallel()
	s := testenv.Storage(t)
	ctx := testenv.Context(t)
	core := minio.Core{Client: s.Client()}
	old, young := storage.KeyFor(uuid.Must(uuid.NewV7()).String()), storage.KeyFor(uuid.Must(uuid.NewV7()).String())
	for _, k := range []string{old, young} {
		if _, err := core.NewMultipartUpload(ctx, s.Bucket(), k, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// What the sweeper did before: list by the "objects/" prefix. MinIO
	// lists nothing that way, so nothing was ever aborted.
	byPrefix := 0
	for up := range s.Client().ListIncompleteUploads(ctx, s.Bucket(), "objects/", true) {
		if up.Err == nil {
			byPrefix++
		}
	}
	t.Logf("uploads listed by the prefix objects/: %d of 2", byPrefix)
	// "old": any upload older than a nanosecond (both are); "young": one
	// started within the hour (both are), so the threshold alone decides.
	n, err := s.AbortUploadsOf(ctx, []string{old}, time.Nanosecond)
	if err != nil || n != 1 {
		t.Fatalf("aborted %d (%v), want 1", n, err)
	}
	if n, err := s.AbortUploadsOf(ctx, []string{young}, time.Hour); err != nil || n != 0 {
		t.Fatalf("aborted %d (%v) of a young upload, want 0", n, err)
	}
	for k, want := range map[string]int{old: 0, young: 1} {
		got := 0
		for up := range s.Client().ListIncompleteUploads(ctx, s.Bucket(), k, false) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			got++
		}
		if got != want {
			t.Errorf("%s: %d incomplete uploads left, want %d", k, got, want)
		}
	}
}

// brokenReader gives some bytes, then the error of a body that broke off.
type brokenReader struct {
	left int
	err  error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, b.err
	}
	n := min(len(p), b.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	b.left -= n
	return n, nil
}

// An input that ends with io.ErrUnexpectedEOF (a multipart part cut short)
// is a broken input, never a short file: ErrBody, nothing stored. Before,
// a small file was stored short and accepted.
func TestPutRefusesBrokenInput(t *testing.T) {
	t.Parallel()
	s := testenv.Storage(t)
	ctx := testenv.Context(t)
	for _, n := range []int{0, 100, 2 << 20} { // within the one-PUT buffer, and past it
		key := storage.KeyFor(uuid.Must(uuid.NewV7()).String())
		_, err := s.Put(ctx, key, &brokenReader{left: n, err: io.ErrUnexpectedEOF}, -1, 10<<20, "text/plain")
		if !errors.Is(err, storage.ErrBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d bytes then ErrUnexpectedEOF: %v, want ErrBody wrapping it", n, err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%d bytes then ErrUnexpectedEOF: an object was stored (%v)", n, err)
		}
	}
}

// With recent-files memory, a small file just stored is read back from
// memory (here: even once its object was deleted behind the store's back),
// a large one from the bucket; removing through the store forgets it, and
// a refused upload leaves nothing to read.
func TestRecentFilesAreReadFromMemory(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	s := testenv.Storage(t, func(c *storage.Config) { c.RecentBytes = 8 << 20 })
	small := bytes.Repeat([]byte("s"), 4096)
	large := bytes.Repeat([]byte("L"), storage.RecentFileMax+1)
	tests := []struct {
		name       string
		data       []byte
		size       int64
		fromMemory bool
	}{
		{"small, known size", small, int64(len(small)), true},
		{"small, unknown size", small, -1, true},
		{"empty", nil, 0, true},
		{"over RecentFileMax, known size", large, int64(len(large)), false},
		{"over RecentFileMax, unknown size", large, -1, false},
	}
	for _, tc := range tests {
		key := "objects/" + uuid.NewString()
		if _, err := s.Put(ctx, key, bytes.NewReader(tc.data), tc.size, 10<<20, "text/plain"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := s.Client().RemoveObject(ctx, s.Bucket(), key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(ctx, key)
		if !tc.fromMemory {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: open after the object was deleted: %v, want ErrNotFound (read from the bucket)", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, tc.data) {
			t.Errorf("%s: read %d bytes (%v), want the %d stored", tc.name, len(got), err, len(tc.data))
		}
		if err := s.Remove(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: open after Remove: %v, want ErrNotFound", tc.name, err)
		}
	}

	key := "objects/" + uuid.NewString()
	if _, err := s.Put(ctx, key, bytes.NewReader(small), -1, 100, "text/plain"); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused upload can be opened: %v", err)
	}
	broken := io.MultiReader(bytes.NewReader(small[:100]), iotest.ErrReader(errors.New("connection reset")))
	if _, err := s.Put(ctx, key, broken, -1, 1<<20, "text/plain"); !errors.Is(err, storage.ErrBody) {
		t.Fatalf("broken body: %v", err)
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an upload whose body broke can be opened: %v", err)
	}
}

// Without recent-files memory (the default), every Open reads the bucket.
func TestWithoutRecentFilesOpenReadsTheBucket(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	s := testenv.Storage(t)
	key := "objects/" + uuid.NewString()
	if _, err := s.Put(ctx, key, bytes.NewReader([]byte("small")), 5, 100, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().RemoveObject(ctx, s.Bucket(), key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("open after the object was deleted: %v, want ErrNotFound", err)
	}
}
