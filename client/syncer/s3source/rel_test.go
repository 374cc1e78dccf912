package s3source

import (
	"slices"
	"testing"
)

// Keys become paths relative to the prefix; directory markers, keys of
// other folders and keys that are no clean path (which some S3 services
// store) are no files.
func TestRel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, key, want string
	}{
		{"docs/", "docs/a.txt", "a.txt"},
		{"docs/", "docs/sub/a b+c.txt", "sub/a b+c.txt"},
		{"docs/", "docs/", ""},
		{"docs/", "docs/sub/", ""},
		{"docs/", "docs2/a.txt", ""},
		{"docs/", "docs//a.txt", ""},
		{"docs/", "docs/./a.txt", ""},
		{"docs/", "docs/../a.txt", ""},
		{"docs/", "docs/a/../../b", ""},
		{"", "a.txt", "a.txt"},
		{"", "/a.txt", ""},
		{"", ".", ""},
	}
	for _, tc := range tests {
		s := &Source{prefix: tc.prefix}
		got, ok := s.rel(tc.key)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("prefix %q, key %q: %q %v, want %q", tc.prefix, tc.key, got, ok, tc.want)
		}
	}
}

// Skip is asked about each folder once per run of keys in it, and a
// skipped folder skips everything under it.
func TestSkipper(t *testing.T) {
	t.Parallel()
	var asked []string
	k := &skipper{dir: ".", fn: func(rel string, isDir bool) bool {
		if isDir {
			asked = append(asked, rel+"/")
			return rel == "a/.git"
		}
		return rel == "a/skip.me"
	}}
	var kept []string
	for _, p := range []string{"a/.git/HEAD", "a/.git/refs/x", "a/b.txt", "a/c.txt", "a/skip.me", "a/d/e.txt", "a/d/f.txt", "top"} {
		if !k.skip(p) {
			kept = append(kept, p)
		}
	}
	if want := []string{"a/b.txt", "a/c.txt", "a/d/e.txt", "a/d/f.txt", "top"}; !slices.Equal(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
	if want := []string{"a/", "a/.git/", "a/", "a/.git/", "a/", "a/", "a/d/"}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
}
