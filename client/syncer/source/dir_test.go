package source_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

func write(t *testing.T, root, rel string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDirWalkSkips(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []string{"a.pdf", "sub/b.pdf", "sub/deep/c.txt", "~$a.docx", ".~lock.x.odt#", "y.tmp", "z.part",
		"d.crdownload", ".a.swp", ".DS_Store", "sub/Thumbs.db", ".git/HEAD", "state/index.db", "logs/x.log"} {
		write(t, root, rel)
	}
	if err := os.Symlink(filepath.Join(root, "a.pdf"), filepath.Join(root, "link.pdf")); err != nil {
		t.Fatal(err)
	}
	f, err := push.NewFilter(nil, []string{"logs"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := source.NewDir(root, source.Rules{Filter: f, Skipped: []string{"state"}}.Skip)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = d.Walk(context.Background(), func(e source.Entry) error {
		if e.Inode == 0 || e.Size == 0 || e.ModTime.IsZero() {
			t.Errorf("entry %+v: stat missing", e)
		}
		got = append(got, e.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"a.pdf", "sub/b.pdf", "sub/deep/c.txt"}; !slices.Equal(got, want) {
		t.Fatalf("walk: %v, want %v", got, want)
	}
	if _, err := d.Stat(context.Background(), ".git/HEAD"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a skipped file: %v", err)
	}
	if _, err := d.Stat(context.Background(), "sub"); !errors.Is(err, source.ErrIsDir) {
		t.Fatalf("stat of a folder: %v", err)
	}
}

func TestDirGone(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mnt")
	d, err := source.NewDir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Walk(context.Background(), func(source.Entry) error { return nil })
	if !errors.Is(err, source.ErrGone) {
		t.Fatalf("missing root: %v", err)
	}
	if _, err := d.Stat(context.Background(), "a.txt"); !errors.Is(err, source.ErrGone) {
		t.Fatalf("stat under a missing root: %v", err)
	}
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Walk(context.Background(), func(source.Entry) error { return nil }); !errors.Is(err, source.ErrGone) {
		t.Fatalf("root a file: %v", err)
	}
}

func TestDirUnreadableFolderIncomplete(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every folder")
	}
	root := t.TempDir()
	write(t, root, "ok.txt")
	write(t, root, "locked/x.txt")
	if err := os.Chmod(filepath.Join(root, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "locked"), 0o755) })
	d, _ := source.NewDir(root, nil)
	n := 0
	err := d.Walk(context.Background(), func(source.Entry) error { n++; return nil })
	if !errors.Is(err, source.ErrIncomplete) || n != 1 {
		t.Fatalf("walk: %d entries, %v", n, err)
	}
}
