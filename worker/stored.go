package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
)

// storedFile opens a job's stored object for its connector and checks, as
// the bytes stream out, that they are the ones recorded at upload: the same
// length and SHA-256. It remembers what went wrong, so that the worker
// decides the job's fate from that rather than from however the connector
// reported the failed read.
type storedFile struct {
	objects ObjectStore
	key     string
	size    int64
	sha256  string

	mu          sync.Mutex
	missing     bool
	corrupt     string
	unavailable error
}

// errCorrupt is the read error a connector sees when the bytes are not the
// ones recorded.
var errCorrupt = errors.New("stored file corrupted")

func (f *storedFile) open(ctx context.Context) (io.ReadCloser, error) {
	rc, err := f.objects.Open(ctx, f.key)
	if errors.Is(err, storage.ErrNotFound) {
		f.mu.Lock()
		f.missing = true
		f.mu.Unlock()
		return nil, targets.Permanent(fmt.Errorf("stored file missing: %w", err))
	}
	if err != nil {
		f.noteUnavailable(err)
		return nil, err
	}
	return &verifying{ReadCloser: rc, f: f, h: sha256.New()}, nil
}

// failure returns the stored file's problem, "" when there is none.
func (f *storedFile) failure() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.missing:
		return "stored file missing: the object of this job is gone from storage"
	case f.corrupt != "":
		return "stored file corrupted: " + f.corrupt
	}
	return ""
}

// storageDown returns the error of object storage not answering a read of
// the file, nil when it did answer.
func (f *storedFile) storageDown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unavailable
}

// noteUnavailable remembers err if it says object storage did not answer.
func (f *storedFile) noteUnavailable(err error) {
	if !errors.Is(err, storage.ErrUnavailable) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unavailable == nil {
		f.unavailable = err
	}
}

func (f *storedFile) setCorrupt(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.corrupt == "" {
		f.corrupt = why
	}
}

// verifying hashes what is read and fails the read that ends the file
// (the one that reaches the recorded size, or an early end) when the bytes
// differ from the record, so that the target never gets a complete
// request with wrong bytes: the request breaks off instead.
type verifying struct {
	io.ReadCloser
	f    *storedFile
	h    hash.Hash
	n    int64
	done bool
}

func (v *verifying) Read(p []byte) (int, error) {
	if v.done {
		// Read on past the recorded size: the object is longer than it
		// was (a connector reading exactly Size never asks).
		var b [1]byte
		if n, _ := v.ReadCloser.Read(b[:]); n > 0 {
			v.f.setCorrupt(fmt.Sprintf("more than the %d bytes recorded at upload", v.f.size))
			return 0, errCorrupt
		}
		return 0, io.EOF
	}
	n, err := v.ReadCloser.Read(p)
	if err != nil {
		v.f.noteUnavailable(err)
	}
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.f.size:
		v.f.setCorrupt(fmt.Sprintf("more than the %d bytes recorded at upload", v.f.size))
		return 0, errCorrupt
	case v.n == v.f.size:
		v.done = true
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.f.sha256 {
			v.f.setCorrupt(fmt.Sprintf("SHA-256 %s, recorded at upload %s", got, v.f.sha256))
			return 0, errCorrupt
		}
		if err == nil {
			err = io.EOF
		}
		return n, err
	case errors.Is(err, io.EOF):
		v.f.setCorrupt(fmt.Sprintf("%d bytes, recorded at upload %d", v.n, v.f.size))
		return 0, errCorrupt
	}
	return n, err
}
