package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/storage"
)

// memObjects serves one object from memory, or none.
type memObjects struct{ data []byte }

func (m memObjects) Ping(context.Context) error { return nil }

func (m memObjects) Open(context.Context, string) (io.ReadCloser, error) {
	if m.data == nil {
		return nil, fmt.Errorf("get k: %w", storage.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(m.data)), nil
}

func TestStoredFileVerifiedWhileStreaming(t *testing.T) {
	recorded := []byte("the bytes recorded at upload")
	sum := sha256.Sum256(recorded)
	for _, tc := range []struct {
		name   string
		stored []byte
		want   string // the failure, "" when the bytes are good
	}{
		{"same bytes", recorded, ""},
		{"other bytes, same length", bytes.ToUpper(recorded), "SHA-256"},
		{"shorter", recorded[:10], "10 bytes, recorded at upload 28"},
		{"longer", append(append([]byte{}, recorded...), '!'), "more than the 28 bytes"},
		{"missing", nil, "stored file missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &storedFile{objects: memObjects{tc.stored}, key: "k", size: int64(len(recorded)), sha256: hex.EncodeToString(sum[:])}
			rc, err := f.open(context.Background())
			var got []byte
			if err == nil {
				// Read as a connector does: exactly the recorded size.
				got, err = io.ReadAll(io.LimitReader(rc, int64(len(recorded))))
				if err == nil && tc.name == "longer" {
					_, err = rc.Read(make([]byte, 8))
				}
			}
			switch {
			case tc.want == "" && (err != nil || !bytes.Equal(got, recorded) || f.failure() != ""):
				t.Fatalf("good bytes: %v %q %q", err, got, f.failure())
			case tc.want != "" && !strings.Contains(f.failure(), tc.want):
				t.Fatalf("failure %q, want %q", f.failure(), tc.want)
			case tc.want != "" && tc.name != "missing" && tc.name != "longer" && !errors.Is(err, errCorrupt):
				t.Fatalf("the read that ends the file must fail, got %v", err)
			}
		})
	}
}
