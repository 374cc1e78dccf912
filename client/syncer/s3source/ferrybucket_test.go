package s3source_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/storage"
)

// A bucket holding ferry's stored uploads (written here by ferry's own
// storage package, so a change of its layout fails this test) is refused,
// whatever the prefix; a user's folder that happens to be called
// "objects" is not.
func TestRefusesFerryBucket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ferry  bool
		user   []string
		prefix string
		refuse bool
	}{
		{"ferry's bucket", true, nil, "", true},
		{"ferry's bucket, another prefix", true, []string{"docs/a.txt"}, "docs", true},
		{"a user's objects folder", false, []string{"objects/report.pdf", "objects/2024/x.txt", "objects/0000"}, "", false},
		{"an empty bucket", false, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := testenv.Storage(t)
			b := bucket{name: st.Bucket(), client: st.Client()}
			if tc.ferry {
				storeFerryFile(t, st)
			}
			for _, k := range tc.user {
				b.put(t, k, "user file")
			}
			s, err := s3source.New(testenv.Context(t), config(b.name, tc.prefix))
			if !tc.refuse {
				if err != nil {
					t.Fatalf("new: %v", err)
				}
				s.Close()
				return
			}
			if !errors.Is(err, s3source.ErrFerryBucket) || errors.Is(err, source.ErrGone) {
				t.Fatalf("new on ferry's bucket: %v, want ErrFerryBucket", err)
			}
			t.Logf("refusal: %v", err)
			if msg := err.Error(); !strings.Contains(msg, b.name) || !strings.Contains(msg, "ferry") {
				t.Errorf("the refusal does not say what and why: %s", msg)
			}
		})
	}
}

// A bucket that becomes ferry's after New is refused by the next Walk
// that lists ferry's files.
func TestWalkRefusesFerryFiles(t *testing.T) {
	t.Parallel()
	st := testenv.Storage(t)
	b := bucket{name: st.Bucket(), client: st.Client()}
	b.put(t, "a.txt", "a")
	s := open(t, config(b.name, ""))
	walk(t, s)
	storeFerryFile(t, st)
	if err := s.Walk(testenv.Context(t), func(source.Entry) error { return nil }); !errors.Is(err, s3source.ErrFerryBucket) {
		t.Fatalf("walk: %v, want ErrFerryBucket", err)
	}
}

// storeFerryFile stores a file the way ferry's API does.
func storeFerryFile(t *testing.T, st *storage.Store) {
	t.Helper()
	key := storage.KeyFor(uuid.Must(uuid.NewV7()).String())
	if _, err := st.Put(testenv.Context(t), key, strings.NewReader("uploaded"), 8, 1<<20, "text/plain"); err != nil {
		t.Fatalf("store: %v", err)
	}
}
