package push

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// File is one file to push.
type File struct {
	// Path is the file's path as the batch knows it: slash-separated,
	// relative to the PATH argument it was found under (or as the manifest
	// wrote it). With the batch and the content, it makes the file's
	// idempotency key.
	Path string
	// Local is where to read it.
	Local string
	// Size is its size when it was found.
	Size int64
	// Filename is the name the target gets: the last element of Path
	// unless the manifest names it.
	Filename string
	// Params are the file's own parameters (from the manifest), over the
	// batch's.
	Params map[string]string
}

// Problem kinds: why a file was not accepted.
const (
	ProblemUnreadable = "unreadable"
	ProblemTooLarge   = "too large"
	ProblemParams     = "params"
	ProblemDuplicate  = "duplicate"
	ProblemNotRegular = "not a file"
	ProblemRefused    = "refused"
	ProblemFailed     = "failed"
	ProblemChanged    = "changed"
)

// Problem is a file that was not pushed (or, for ProblemChanged, was
// pushed while it changed), and why.
type Problem struct {
	Path string
	Kind string
	Err  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%-10s %s: %s", strings.ToUpper(p.Kind), p.Path, p.Err)
}

// found is what a walk collected.
type found struct {
	files    []File
	problems []Problem
	// symlinks counts the symbolic links skipped (not followed).
	symlinks int
}

// walker collects the files under PATH arguments.
type walker struct {
	filter Filter
	follow bool
	out    found
	seen   map[string]string // client path → local path, to refuse duplicates
	dirs   map[string]bool   // real paths of folders walked, against symlink loops
}

// walk collects the regular files under roots that the filter passes. A
// file argument is pushed under its name; the files in a folder argument
// under their path relative to it. Unreadable files and folders are
// reported, not fatal.
func walk(roots []string, filter Filter, follow bool) found {
	w := &walker{filter: filter, follow: follow, seen: map[string]string{}, dirs: map[string]bool{}}
	for _, root := range roots {
		// A PATH named on the command line is followed even if it is a
		// symbolic link, as ls and find -H do.
		info, err := os.Stat(root)
		if err != nil {
			w.problem(root, ProblemUnreadable, err)
			continue
		}
		switch {
		case info.IsDir():
			w.dir(root, "")
		case info.Mode().IsRegular():
			name := filepath.Base(root)
			if w.filter.File(name) {
				w.add(name, root, info.Size())
			}
		default:
			w.problem(root, ProblemNotRegular, fmt.Errorf("%s", info.Mode().Type()))
		}
	}
	return w.out
}

// dir walks the folder at local, whose files get paths under prefix.
func (w *walker) dir(local, prefix string) {
	// Walk the folder itself, not the link to it: WalkDir does not follow
	// a root that is a symbolic link.
	real, err := filepath.EvalSymlinks(local)
	if err != nil {
		w.problem(show(prefix, local), ProblemUnreadable, err)
		return
	}
	if w.dirs[real] {
		w.problem(show(prefix, local), ProblemDuplicate, errors.New("folder reached twice through symbolic links; walked once"))
		return
	}
	w.dirs[real] = true
	local = real
	_ = filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		rel := prefix
		if r, rerr := filepath.Rel(local, p); rerr == nil && r != "." {
			rel = path.Join(prefix, filepath.ToSlash(r))
		}
		if err != nil {
			// An unreadable folder (or file vanished): report, go on.
			w.problem(show(rel, p), ProblemUnreadable, err)
			if d != nil && d.IsDir() && p != local {
				return fs.SkipDir
			}
			return nil
		}
		if p == local {
			return nil
		}
		switch {
		case d.IsDir():
			if w.filter.SkipDir(rel) {
				return fs.SkipDir
			}
		case d.Type()&fs.ModeSymlink != 0:
			w.symlink(p, rel)
		case d.Type().IsRegular():
			if !w.filter.File(rel) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				w.problem(rel, ProblemUnreadable, err)
				return nil
			}
			w.add(rel, p, info.Size())
		default:
			if w.filter.File(rel) {
				w.problem(rel, ProblemNotRegular, fmt.Errorf("%s", d.Type()))
			}
		}
		return nil
	})
}

// symlink skips a symbolic link, or follows it with --follow-symlinks.
func (w *walker) symlink(local, rel string) {
	if !w.follow {
		w.out.symlinks++
		return
	}
	info, err := os.Stat(local)
	if err != nil {
		w.problem(rel, ProblemUnreadable, err)
		return
	}
	switch {
	case info.IsDir():
		if !w.filter.SkipDir(rel) {
			w.dir(local, rel)
		}
	case info.Mode().IsRegular():
		if w.filter.File(rel) {
			w.add(rel, local, info.Size())
		}
	default:
		w.problem(rel, ProblemNotRegular, fmt.Errorf("%s", info.Mode().Type()))
	}
}

func (w *walker) add(rel, local string, size int64) {
	if other, ok := w.seen[rel]; ok {
		w.problem(rel, ProblemDuplicate, fmt.Errorf("%s and %s have the same path; only the first is pushed", other, local))
		return
	}
	w.seen[rel] = local
	w.out.files = append(w.out.files, File{Path: rel, Local: local, Size: size, Filename: path.Base(rel)})
}

func (w *walker) problem(p, kind string, err error) {
	w.out.problems = append(w.out.problems, Problem{Path: p, Kind: kind, Err: err.Error()})
}

// show is rel, or the local path for the root itself.
func show(rel, local string) string {
	if rel == "" {
		return local
	}
	return rel
}
