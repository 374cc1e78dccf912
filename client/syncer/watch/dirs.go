package watch

import "path"

// dirTree is the set of watched directories, as slash-separated paths
// relative to the root ("." is the root), each with the names of its
// watched subdirectories, so that a removed or renamed directory drops its
// whole subtree without a scan of every directory. A child's name shares
// the bytes of its own key.
type dirTree struct {
	kids map[string][]string
}

func newDirTree() *dirTree { return &dirTree{kids: make(map[string][]string)} }

func (t *dirTree) has(rel string) bool {
	_, ok := t.kids[rel]
	return ok
}

func (t *dirTree) len() int { return len(t.kids) }

// add records rel as watched, under its parent when the parent is watched.
func (t *dirTree) add(rel string) {
	if t.has(rel) {
		return
	}
	t.kids[rel] = nil
	if rel == "." {
		return
	}
	parent := path.Dir(rel)
	if kids, ok := t.kids[parent]; ok {
		t.kids[parent] = append(kids, path.Base(rel))
	}
}

// remove forgets rel and everything under it, calling gone for each
// directory forgotten.
func (t *dirTree) remove(rel string, gone func(rel string)) {
	kids, ok := t.kids[rel]
	if !ok {
		return
	}
	delete(t.kids, rel)
	for _, k := range kids {
		t.remove(path.Join(rel, k), gone)
	}
	gone(rel)
	if rel == "." {
		return
	}
	parent, base := path.Dir(rel), path.Base(rel)
	siblings, ok := t.kids[parent]
	if !ok {
		return
	}
	for i, s := range siblings {
		if s == base {
			siblings[i] = siblings[len(siblings)-1]
			t.kids[parent] = siblings[:len(siblings)-1]
			break
		}
	}
}

// each calls fn for every watched directory.
func (t *dirTree) each(fn func(rel string)) {
	for rel := range t.kids {
		fn(rel)
	}
}
