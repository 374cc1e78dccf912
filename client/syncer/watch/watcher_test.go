package watch

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// skipTemp is the kind of Skip sync passes: .git/ and temporary files.
func skipTemp(rel string, isDir bool) bool {
	if isDir {
		return filepath.Base(rel) == ".git"
	}
	return strings.HasSuffix(rel, ".tmp")
}

func TestChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		before func(t *testing.T, root string) // the tree before watching
		act    func(t *testing.T, root string)
		want   []string // each handed over at least once
		never  []string // never handed over
		dirs   []string // watched at the end (nil: not checked)
	}{{
		name: "create",
		act:  func(t *testing.T, root string) { write(t, root, "new.txt", "1") },
		want: []string{"new.txt"},
	}, {
		name:   "modify",
		before: func(t *testing.T, root string) { write(t, root, "f.txt", "1") },
		act: func(t *testing.T, root string) {
			f, err := os.OpenFile(filepath.Join(root, "f.txt"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteString("2")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"f.txt"},
	}, {
		name:   "delete",
		before: func(t *testing.T, root string) { write(t, root, "f.txt", "1") },
		act: func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "f.txt")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"f.txt"},
	}, {
		name:   "rename",
		before: func(t *testing.T, root string) { write(t, root, "old.txt", "1") },
		act:    func(t *testing.T, root string) { mv(t, root, "old.txt", "new.txt") },
		want:   []string{"old.txt", "new.txt"},
	}, {
		name: "move between folders",
		before: func(t *testing.T, root string) {
			write(t, root, "a/x.txt", "1")
			mkdirs(t, root, "b")
		},
		act:  func(t *testing.T, root string) { mv(t, root, "a/x.txt", "b/x.txt") },
		want: []string{"a/x.txt", "b/x.txt"},
		dirs: []string{".", "a", "b"},
	}, {
		name:   "editor save pattern",
		before: func(t *testing.T, root string) { write(t, root, "doc.txt", "v1") },
		act: func(t *testing.T, root string) {
			write(t, root, "doc.txt.tmp", "v2")
			mv(t, root, "doc.txt.tmp", "doc.txt")
		},
		want:  []string{"doc.txt"},
		never: []string{"doc.txt.tmp"},
	}, {
		name: "new nested folders",
		act: func(t *testing.T, root string) {
			mkdirs(t, root, "a/b/c")
			write(t, root, "a/1.txt", "1")
			write(t, root, "a/b/2.txt", "2")
			write(t, root, "a/b/c/3.txt", "3")
		},
		want: []string{"a", "a/b", "a/b/c", "a/1.txt", "a/b/2.txt", "a/b/c/3.txt"},
		dirs: []string{".", "a", "a/b", "a/b/c"},
	}, {
		name:   "folder renamed",
		before: func(t *testing.T, root string) { write(t, root, "d/sub/f.txt", "1") },
		act: func(t *testing.T, root string) {
			mv(t, root, "d", "e")
			write(t, root, "e/sub/g.txt", "2")
		},
		want:  []string{"d", "e", "e/sub/f.txt", "e/sub/g.txt"},
		never: []string{"d/sub/g.txt"},
		dirs:  []string{".", "e", "e/sub"},
	}, {
		name:   "folder removed",
		before: func(t *testing.T, root string) { write(t, root, "d/sub/f.txt", "1") },
		act: func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"d"},
		dirs: []string{"."},
	}, {
		name:   "folder removed and made again",
		before: func(t *testing.T, root string) { write(t, root, "d/f.txt", "1") },
		act: func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
				t.Fatal(err)
			}
			write(t, root, "d/n.txt", "2")
		},
		want: []string{"d", "d/n.txt"},
		dirs: []string{".", "d"},
	}, {
		name: "skipped folder",
		act: func(t *testing.T, root string) {
			write(t, root, ".git/HEAD", "ref")
			write(t, root, ".git/objects/x", "1")
			write(t, root, "ok.txt", "1")
		},
		want:  []string{"ok.txt"},
		never: []string{".git", ".git/HEAD", ".git/objects", ".git/objects/x"},
		dirs:  []string{"."},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if tc.before != nil {
				tc.before(t, root)
			}
			rec, w, stop := run(t, root, Options{Skip: skipTemp})
			tc.act(t, root)
			eventually(t, "handed over "+strings.Join(tc.want, ", "), func() bool { return rec.saw(tc.want...) })
			time.Sleep(3 * w.o.Debounce) // Late hints would have arrived by now.
			stop()
			for _, p := range tc.never {
				if rec.saw(p) {
					t.Errorf("%s handed over", p)
				}
			}
			if tc.dirs != nil {
				got := slices.Sorted(maps.Keys(w.dirs.kids)) // Run has returned.
				if want := slices.Sorted(slices.Values(tc.dirs)); !slices.Equal(got, want) {
					t.Errorf("watched %q, want %q", got, want)
				}
			}
		})
	}
}
