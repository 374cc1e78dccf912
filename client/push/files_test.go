package push

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*.pdf", "a.pdf", true},
		{"*.pdf", "deep/down/a.pdf", true},
		{"*.pdf", "a.pdf.txt", false},
		{"été/*.txt", "été/x.txt", true},
		{"été/*.txt", "a/été/x.txt", false},
		{"**/été/*.txt", "a/été/x.txt", true},
		{"**/été/*.txt", "été/x.txt", true},
		{"scans/**", "scans", true},
		{"scans/**", "scans/a/b/c.tif", true},
		{"scans/**/*.tif", "scans/a/b/c.tif", true},
		{"scans/**/*.tif", "scans/c.tif", true},
		{"scans/**/*.tif", "other/c.tif", false},
		{"/top.txt", "top.txt", true},
		{"a/**/**/b", "a/b", true},
		{"a/?/c", "a/xy/c", false},
	}
	for _, c := range cases {
		if got := match(c.pattern, c.name); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	if _, err := NewFilter([]string{"[a-"}, nil); err == nil {
		t.Error("a malformed pattern was accepted")
	}
}

func write(t *testing.T, root, rel, content string) string {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func paths(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

func TestWalk(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "docs/a.pdf", "a")
	write(t, root, "docs/été/résumé.pdf", "résumé")
	write(t, root, "docs/tmp/skip.pdf", "x")
	write(t, root, "docs/notes.txt", "")
	write(t, root, "outside/linked.pdf", "linked")
	docs := filepath.Join(root, "docs")
	if err := os.Symlink(filepath.Join(root, "outside"), filepath.Join(docs, "link-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(docs, "dangling.pdf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(docs, filepath.Join(docs, "loop")); err != nil { // a cycle
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(docs, "pipe.pdf"), 0o644); err != nil {
		t.Fatal(err)
	}
	filter, _ := NewFilter(nil, []string{"tmp"})

	f := walk([]string{docs}, filter, false)
	if got, want := paths(f.files), []string{"a.pdf", "notes.txt", "été/résumé.pdf"}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if f.symlinks != 3 {
		t.Errorf("%d symlinks skipped, want 3", f.symlinks)
	}
	if len(f.problems) != 1 || f.problems[0].Kind != ProblemNotRegular {
		t.Errorf("problems %+v, want the FIFO", f.problems)
	}

	// Followed: the linked folder's file, the dangling link reported, the
	// loop walked once.
	f = walk([]string{docs}, filter, true)
	if got, want := paths(f.files), []string{"a.pdf", "link-dir/linked.pdf", "notes.txt", "été/résumé.pdf"}; !slices.Equal(got, want) {
		t.Errorf("followed: files %q, want %q", got, want)
	}
	kinds := map[string]string{}
	for _, p := range f.problems {
		kinds[p.Path] = p.Kind
	}
	if kinds["dangling.pdf"] != ProblemUnreadable || kinds["pipe.pdf"] != ProblemNotRegular || len(kinds) != 3 {
		t.Errorf("followed: problems %+v", f.problems)
	}

	// Includes; a file argument goes under its name; two arguments with
	// the same path: the second is reported.
	only, _ := NewFilter([]string{"*.pdf"}, nil)
	f = walk([]string{filepath.Join(docs, "a.pdf"), docs, filepath.Join(root, "missing")}, only, false)
	if got, want := paths(f.files), []string{"a.pdf", "tmp/skip.pdf", "été/résumé.pdf"}; !slices.Equal(got, want) {
		t.Errorf("include: files %q, want %q", got, want)
	}
	var kindsSeen []string
	for _, p := range f.problems {
		kindsSeen = append(kindsSeen, p.Kind)
	}
	slices.Sort(kindsSeen)
	if want := []string{ProblemDuplicate, ProblemNotRegular, ProblemUnreadable}; !slices.Equal(kindsSeen, want) {
		t.Errorf("include: problems %+v", f.problems)
	}
}

func TestManifest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "in/a.pdf", "a")
	write(t, root, "in/b.pdf", "bb")
	abs := write(t, root, "elsewhere/c.pdf", "ccc")
	csv := "\ufeffpath,filename,param.parentId,param.note\n" +
		"in/a.pdf,,P1,\n" +
		"./in/b.pdf,Bee.pdf,P2,\"a, b\"\n" +
		abs + ",,P3,x\n" +
		"in/missing.pdf,,P4,\n" +
		"in/a.pdf,,P5,\n"
	filter, _ := NewFilter(nil, nil)
	f, err := parseManifest(strings.NewReader(csv), root, filter)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.files) != 3 {
		t.Fatalf("files %+v", f.files)
	}
	a, b, c := f.files[0], f.files[1], f.files[2]
	if a.Path != "in/a.pdf" || a.Filename != "a.pdf" || a.Size != 1 || a.Params["parentId"] != "P1" || len(a.Params) != 1 {
		t.Errorf("a: %+v", a)
	}
	if b.Path != "in/b.pdf" || b.Filename != "Bee.pdf" || b.Params["note"] != "a, b" || b.Params["parentId"] != "P2" {
		t.Errorf("b: %+v", b)
	}
	if c.Local != abs || c.Size != 3 {
		t.Errorf("c: %+v", c)
	}
	if len(f.problems) != 2 || f.problems[0].Kind != ProblemUnreadable || f.problems[1].Kind != ProblemDuplicate {
		t.Errorf("problems %+v", f.problems)
	}
	for _, bad := range []string{"", "file\nx\n", "path,colour\nx,red\n", "path,path\n", "path\n\"unclosed\n", "path\n \n"} {
		if _, err := parseManifest(strings.NewReader(bad), root, filter); err == nil {
			t.Errorf("manifest %q accepted", bad)
		}
	}
}

func TestKeyAndDefaultBatch(t *testing.T) {
	t.Parallel()
	k := Key("b", "a/x.pdf", "00ff")
	if len(k) != 64 || k == Key("b", "a/x.pdf", "00fe") || k == Key("c", "a/x.pdf", "00ff") || k == Key("b", "a/y.pdf", "00ff") {
		t.Error("the key does not depend on batch, path and content")
	}
	if Key("ab", "c", "d") == Key("a", "bc", "d") {
		t.Error("fields are not separated")
	}
	o := Options{Paths: []string{"/data/Archive 2026"}, Target: "bw"}
	n := defaultBatchName(o)
	if !strings.HasPrefix(n, "Archive 2026-") || n != defaultBatchName(o) {
		t.Errorf("default batch %q", n)
	}
	o.Target = "other"
	if defaultBatchName(o) == n {
		t.Error("the default batch does not depend on the target")
	}
}

func FuzzManifest(f *testing.F) {
	f.Add("path,param.x\na,1\n")
	f.Add("path,filename\n\"a\"\"b\",c\n")
	root := f.TempDir()
	filter, _ := NewFilter(nil, nil)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseManifest(strings.NewReader(s), root, filter)
	})
}
