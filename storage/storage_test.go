package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

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
