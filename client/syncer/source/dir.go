package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrIncomplete means a walk went on past folders it could not read: the
// entries it gave are true, but files under those folders were not
// listed, so their absence says nothing (no delete may follow from it).
var ErrIncomplete = errors.New("listing incomplete")

// ErrIsDir is Stat's error for a path that is a folder.
var ErrIsDir = errors.New("is a folder")

// readDirChunk is how many entries a folder is read by at once, so that a
// folder of a million files does not become one slice.
const readDirChunk = 1024

// Dir is a local folder as a Source. Symbolic links are not followed
// (neither to files nor to folders): a link is not a document, and
// following links could leave the tree or loop.
type Dir struct {
	root string
	skip func(rel string, isDir bool) bool
}

var _ Source = (*Dir)(nil)

// NewDir returns the folder at root as a Source; skip (may be nil) says
// what is not a document, as Rules.Skip does. The root need not exist
// yet: Walk says ErrGone while it does not.
func NewDir(root string, skip func(rel string, isDir bool) bool) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", root, err)
	}
	if skip == nil {
		skip = func(string, bool) bool { return false }
	}
	return &Dir{root: filepath.Clean(abs), skip: skip}, nil
}

// String is the root's absolute path.
func (d *Dir) String() string { return d.root }

// Root is the root's absolute path.
func (d *Dir) Root() string { return d.root }

// Walk lists every file under the root that skip passes. A folder it
// cannot read is passed over and the walk ends in an error matching
// ErrIncomplete; a root that is missing or not a folder is ErrGone.
func (d *Dir) Walk(ctx context.Context, fn func(Entry) error) error {
	return d.WalkUnder(ctx, "", fn)
}

// WalkUnder is Walk limited to the folder at prefix (slash-separated,
// relative to the root; "" for all). A prefix that is not there lists
// nothing and is an error matching fs.ErrNotExist.
func (d *Dir) WalkUnder(ctx context.Context, prefix string, fn func(Entry) error) error {
	if err := d.checkRoot(); err != nil {
		return err
	}
	var unreadable []string
	err := d.walkDir(ctx, prefix, fn, &unreadable)
	if err != nil && prefix != "" && errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if cerr := d.checkRoot(); cerr != nil {
		return cerr // gone while it was walked: nothing it listed counts
	}
	if err != nil {
		return err
	}
	if len(unreadable) > 0 {
		return fmt.Errorf("%w: %d folders could not be read (first %s)", ErrIncomplete, len(unreadable), unreadable[0])
	}
	return nil
}

// checkRoot says ErrGone when the root is not a folder.
func (d *Dir) checkRoot() error {
	info, err := os.Stat(d.root)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrGone, d.root, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%w: %s is not a folder", ErrGone, d.root)
	}
	return nil
}

// walkDir lists the folder rel, depth first, reading its names in chunks
// and looking at each relative to the open folder (fstatat): the kernel
// does not resolve the whole path again for every file, and no
// fs.FileInfo is made per file.
func (d *Dir) walkDir(ctx context.Context, rel string, fn func(Entry) error, unreadable *[]string) error {
	f, err := os.Open(d.local(rel))
	if err != nil {
		if rel != "" && !errors.Is(err, fs.ErrNotExist) {
			*unreadable = append(*unreadable, rel)
			return nil
		}
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, rerr := f.Readdirnames(readDirChunk)
		for _, name := range names {
			if err := d.visit(ctx, fd, rel, name, fn, unreadable); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			*unreadable = append(*unreadable, rel)
			return nil
		}
	}
}

// visit handles the entry name of the folder rel, open as dirfd.
func (d *Dir) visit(ctx context.Context, dirfd int, rel, name string, fn func(Entry) error, unreadable *[]string) error {
	p := join(rel, name)
	var st unix.Stat_t
	if err := statAt(dirfd, name, &st); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			*unreadable = append(*unreadable, p) // cannot tell what it is: no delete may follow
		}
		return nil // removed since the folder was read
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if d.skip(p, true) {
			return nil
		}
		if err := d.walkDir(ctx, p, fn, unreadable); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case unix.S_IFREG:
		if d.skip(p, false) {
			return nil
		}
		return fn(Entry{Path: p, Size: st.Size, ModTime: time.Unix(st.Mtim.Unix()), Inode: st.Ino})
	default:
		return nil // links, devices, sockets: not documents
	}
}

// statAt is fstatat(dirfd, name) without following a link.
func statAt(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// Stat looks at the file at rel again (without following a link). A
// path the skip rules leave out is not there (fs.ErrNotExist), nor is a
// file under a root that is gone (ErrGone).
func (d *Dir) Stat(_ context.Context, rel string) (Entry, error) {
	info, err := os.Lstat(d.local(rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if rerr := d.checkRoot(); rerr != nil {
				return Entry{}, rerr
			}
		}
		return Entry{}, err
	}
	if d.skipped(rel, info.IsDir()) {
		return Entry{}, fmt.Errorf("%s: skipped: %w", rel, fs.ErrNotExist)
	}
	if info.IsDir() {
		return Entry{}, fmt.Errorf("%s: %w", rel, ErrIsDir)
	}
	if !info.Mode().IsRegular() {
		return Entry{}, fmt.Errorf("%s: not a regular file: %w", rel, fs.ErrNotExist)
	}
	return entryOf(rel, info), nil
}

// Open opens the file at rel and says what it was when opened.
func (d *Dir) Open(_ context.Context, rel string) (io.ReadCloser, Entry, error) {
	f, err := os.Open(d.local(rel))
	if err != nil {
		return nil, Entry{}, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Entry{}, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, Entry{}, fmt.Errorf("%s: not a regular file: %w", rel, fs.ErrNotExist)
	}
	return f, entryOf(rel, info), nil
}

// skipped reports whether rel, or a folder it is in, is skipped.
func (d *Dir) skipped(rel string, isDir bool) bool {
	if d.skip(rel, isDir) {
		return true
	}
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if d.skip(dir, true) {
			return true
		}
	}
	return false
}

// local is the OS path of rel.
func (d *Dir) local(rel string) string {
	if rel == "" {
		return d.root
	}
	return filepath.Join(d.root, filepath.FromSlash(rel))
}

func entryOf(rel string, info fs.FileInfo) Entry {
	e := Entry{Path: rel, Size: info.Size(), ModTime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		e.Inode = st.Ino
	}
	return e
}

// join is dir/name; name is one clean path element.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// Rel returns the slash-separated path of local relative to the root, and
// false when local is not under it.
func (d *Dir) Rel(local string) (string, bool) {
	r, err := filepath.Rel(d.root, local)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	if r == "." {
		return "", true
	}
	return filepath.ToSlash(r), true
}
