package s3source_test

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/minio/minio-go/v7"
)

// A prefix is a folder: the keys under it, relative to it, without
// directory markers, other folders that merely start alike, or what Skip
// rules out (a file, or a folder and all under it).
func TestWalkPrefix(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	for _, k := range []string{"top.txt", "docs/", "docs/a.txt", "docs/sub/", "docs/sub/b.txt",
		"docs/.git/config", "docs/sub/.git/HEAD", "docs/x.tmp", "docs2/c.txt", "other/d.txt", "docs/sub/ü ö+&.txt"} {
		b.put(t, k, "content of "+k)
	}
	skip := func(rel string, isDir bool) bool {
		if isDir {
			return path.Base(rel) == ".git"
		}
		return strings.HasSuffix(rel, ".tmp")
	}
	docs := []string{".git/config", "a.txt", "sub/.git/HEAD", "sub/b.txt", "sub/ü ö+&.txt", "x.tmp"}
	tests := []struct {
		name   string
		prefix string
		skip   func(string, bool) bool
		want   []string
	}{
		{"whole bucket", "", nil, []string{"docs/.git/config", "docs/a.txt", "docs/sub/.git/HEAD", "docs/sub/b.txt",
			"docs/sub/ü ö+&.txt", "docs/x.tmp", "docs2/c.txt", "other/d.txt", "top.txt"}},
		{"folder", "docs", nil, docs},
		{"folder with slash", "docs/", nil, docs},
		{"leading slash", "/docs", nil, docs},
		{"skipped files and folders", "docs", skip, []string{"a.txt", "sub/b.txt", "sub/ü ö+&.txt"}},
		{"skipped at the root", "", skip, []string{"docs/a.txt", "docs/sub/b.txt", "docs/sub/ü ö+&.txt", "docs2/c.txt", "other/d.txt", "top.txt"}},
		{"subfolder", "docs/sub", nil, []string{".git/HEAD", "b.txt", "ü ö+&.txt"}},
		{"empty prefix", "nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(b.name, tc.prefix)
			cfg.Skip = tc.skip
			seen := walk(t, open(t, cfg))
			if got := paths(seen); !slices.Equal(got, tc.want) {
				t.Fatalf("walk %q: got %q, want %q", tc.prefix, got, tc.want)
			}
			for p, e := range seen {
				key := strings.TrimPrefix(cfg.Prefix, "/")
				if key != "" && !strings.HasSuffix(key, "/") {
					key += "/"
				}
				if want := int64(len("content of " + key + p)); e.Size != want || e.ETag == "" || e.ModTime.IsZero() || e.Inode != 0 {
					t.Errorf("%s: entry %+v, want size %d, an ETag and a time", p, e, want)
				}
			}
		})
	}
}

// A listing of more than one page (S3's page is 1,000 keys) sees every
// object once, and asks for as many pages as the page size says.
func TestWalkPages(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	const n = 1100
	putMany(t, b, n)
	for _, tc := range []struct {
		page      int
		wantLists int64
	}{{0, 2}, {250, 5}} {
		t.Run(fmt.Sprintf("page %d", tc.page), func(t *testing.T) {
			cfg := config(b.name, "many")
			cfg.PageSize = tc.page
			tr := newCountingTransport(t, "many/")
			cfg.Transport = tr
			s := open(t, cfg)
			before := tr.lists.Load() // New's own look at the prefix
			start := time.Now()
			seen := walk(t, s)
			t.Logf("walk of %d objects in pages of %d: %s", n, cmp.Or(tc.page, 1000), time.Since(start))
			if len(seen) != n {
				t.Fatalf("walk saw %d objects, want %d", len(seen), n)
			}
			for i := range n {
				p := fmt.Sprintf("f%05d.txt", i)
				if e, ok := seen[p]; !ok || e.Size != int64(len(p)) {
					t.Fatalf("%s: %+v (seen %v)", p, e, ok)
				}
			}
			if lists := tr.lists.Load() - before; lists != tc.wantLists {
				t.Errorf("%d list requests, want %d", lists, tc.wantLists)
			}
		})
	}
}

// putMany stores n tiny objects many/fNNNNN.txt, 16 at a time.
func putMany(t *testing.T, b bucket, n int) {
	t.Helper()
	ctx := testenv.Context(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	keys := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range keys {
				name := fmt.Sprintf("f%05d.txt", i)
				_, err := b.client.PutObject(ctx, b.name, "many/"+name, strings.NewReader(name), int64(len(name)), minio.PutObjectOptions{})
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	if first != nil {
		t.Fatalf("put: %v", first)
	}
}
