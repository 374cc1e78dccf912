package push

import (
	"fmt"
	"path"
	"strings"
)

// Filter decides which files are pushed, by glob patterns on their paths
// (slash-separated, relative to the PATH given). A pattern without a slash
// matches the file's name at any depth ("*.pdf"); a pattern with one
// matches the whole path, where "**" stands for any number of folders
// ("scans/**/*.tif"). Excluding a folder skips all it holds.
type Filter struct {
	include, exclude []string
}

// NewFilter checks the patterns and returns the filter. With no include
// pattern every file is included.
func NewFilter(include, exclude []string) (Filter, error) {
	for _, p := range append(append([]string{}, include...), exclude...) {
		for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			if _, err := path.Match(seg, ""); err != nil {
				return Filter{}, fmt.Errorf("pattern %q: %w", p, err)
			}
		}
	}
	return Filter{include: include, exclude: exclude}, nil
}

// File reports whether the file at rel is pushed.
func (f Filter) File(rel string) bool {
	if f.excluded(rel) {
		return false
	}
	if len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if match(p, rel) {
			return true
		}
	}
	return false
}

// SkipDir reports whether the folder at rel is excluded with everything
// in it.
func (f Filter) SkipDir(rel string) bool { return f.excluded(rel) }

func (f Filter) excluded(rel string) bool {
	for _, p := range f.exclude {
		if match(p, rel) {
			return true
		}
	}
	return false
}

// match reports whether pattern matches the slash-separated path name.
func match(pattern, name string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(name))
		return ok
	}
	return matchSegments(strings.Split(strings.TrimPrefix(pattern, "/"), "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for len(rest) > 0 && rest[0] == "**" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return true
			}
			for i := range len(name) + 1 {
				if matchSegments(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
