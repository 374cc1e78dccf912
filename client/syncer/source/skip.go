package source

import (
	"path"
	"strings"

	"github.com/ferry-relay/ferry/client/push"
)

// Rules decide what under a source is not a document: the temporary and
// lock files of common tools, version-control folders, sync's own state,
// and what --include/--exclude leave out. Dir.Walk applies them, and the
// watcher uses Skip to choose what it watches and reports.
type Rules struct {
	// Filter is --include/--exclude (the zero Filter passes everything).
	Filter push.Filter
	// Skipped are slash-separated paths relative to the root that are
	// skipped with all they hold (the state folder when it lies inside
	// the source).
	Skipped []string
}

// Temporary and lock files of common tools, never documents: Office's
// owner files (~$x.docx), LibreOffice's locks (.~lock.x.odt#), partial
// downloads, editor swap files and desktop metadata. As patterns:
// ~$*, .~lock.*#, *.tmp, *.part, *.crdownload, *.swp, .DS_Store,
// Thumbs.db; matched by hand, since every file of every pass is checked.
var (
	tempPrefixes = []string{"~$"}
	tempSuffixes = []string{".tmp", ".part", ".crdownload", ".swp"}
	tempNames    = []string{".DS_Store", "Thumbs.db"}
)

// skippedDirs are folder names skipped with all they hold.
var skippedDirs = []string{".git"}

// Skip reports whether the file or folder at rel (slash-separated,
// relative to the root) is skipped; a skipped folder is skipped with all
// it holds. Its signature is the watcher's Options.Skip.
func (r Rules) Skip(rel string, isDir bool) bool {
	if rel == "" || rel == "." {
		return false
	}
	for _, s := range r.Skipped {
		if rel == s || strings.HasPrefix(rel, s+"/") {
			return true
		}
	}
	name := path.Base(rel)
	if isDir {
		for _, d := range skippedDirs {
			if name == d {
				return true
			}
		}
		return r.Filter.SkipDir(rel)
	}
	if IsTemporary(name) {
		return true
	}
	return !r.Filter.File(rel)
}

// IsTemporary reports whether a file's name is one of a temporary or lock
// file.
func IsTemporary(name string) bool {
	for _, p := range tempPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, x := range tempSuffixes {
		if strings.HasSuffix(name, x) {
			return true
		}
	}
	if strings.HasPrefix(name, ".~lock.") && strings.HasSuffix(name, "#") && len(name) > len(".~lock.#") {
		return true
	}
	for _, n := range tempNames {
		if name == n {
			return true
		}
	}
	return false
}
