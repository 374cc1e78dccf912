package watch

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestHintSet(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		add  []string // paths noted at ms
		take bool     // take at ms instead
		ms   int
		want []string // taken (nil: not due)
		many bool
	}
	for _, tc := range []struct {
		name  string
		max   int
		steps []step
	}{{
		name: "due a debounce after the last",
		max:  10,
		steps: []step{
			{add: []string{"b", "a"}, ms: 0},
			{add: []string{"a"}, ms: 150},
			{take: true, ms: 200},
			{take: true, ms: 250, want: []string{"a", "b"}},
			{take: true, ms: 400},
		},
	}, {
		name: "due at the deadline under constant writes",
		max:  10,
		steps: []step{
			{add: []string{"x"}, ms: 0}, {add: []string{"x"}, ms: 80}, {add: []string{"y"}, ms: 160},
			{add: []string{"x"}, ms: 240}, {add: []string{"x"}, ms: 320}, {add: []string{"x"}, ms: 400},
			{take: true, ms: 450},
			{take: true, ms: 500, want: []string{"x", "y"}},
			{add: []string{"z"}, ms: 510},
			{take: true, ms: 610, want: []string{"z"}},
		},
	}, {
		name: "past the bound: too many, then a fresh batch",
		max:  3,
		steps: []step{
			{add: []string{"a", "b", "c", "a"}, ms: 0},
			{add: []string{"d", "e"}, ms: 10},
			{take: true, ms: 110, many: true},
			{add: []string{"f"}, ms: 120},
			{take: true, ms: 220, want: []string{"f"}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHintSet(Options{Debounce: 100 * time.Millisecond, Deadline: 500 * time.Millisecond, MaxPaths: tc.max})
			defer h.stop()
			for i, s := range tc.steps {
				if !s.take {
					for _, p := range s.add {
						h.add(p, at(s.ms))
					}
					continue
				}
				paths, many, due := h.take(at(s.ms))
				wantDue := s.want != nil || s.many
				if due != wantDue || many != s.many || !slices.Equal(paths, s.want) {
					t.Errorf("step %d at %d ms: %q many=%v due=%v, want %q many=%v due=%v",
						i, s.ms, paths, many, due, s.want, s.many, wantDue)
				}
				if len(h.paths) > tc.max {
					t.Errorf("step %d: %d paths held, bound %d", i, len(h.paths), tc.max)
				}
			}
		})
	}
}

func TestDirTree(t *testing.T) {
	t.Parallel()
	d := newDirTree()
	for _, rel := range []string{".", "a", "a/b", "a/b/c", "a/bb", "ab", "x"} {
		d.add(rel)
	}
	var gone []string
	d.remove("a/b", func(rel string) { gone = append(gone, rel) })
	slices.Sort(gone)
	if want := []string{"a/b", "a/b/c"}; !slices.Equal(gone, want) {
		t.Errorf("removed %q, want %q", gone, want)
	}
	if want := []string{".", "a", "a/bb", "ab", "x"}; !slices.Equal(slices.Sorted(maps.Keys(d.kids)), want) {
		t.Errorf("left %q, want %q", slices.Sorted(maps.Keys(d.kids)), want)
	}
	if !slices.Equal(d.kids["a"], []string{"bb"}) {
		t.Errorf("a's children %q", d.kids["a"])
	}
	d.remove(".", func(string) {})
	if d.len() != 0 {
		t.Errorf("%d left after removing the root", d.len())
	}
}

func TestRelOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ root, name, rel string }{
		{"/src", "/src", "."},
		{"/src", "/src/a/b.txt", "a/b.txt"},
		{"/src", "/srcx/a", ""},
		{"/", "/etc/x", "etc/x"},
	} {
		w := &Watcher{root: tc.root}
		rel, ok := w.relOf(tc.name)
		if got := fmt.Sprint(rel, ok); got != fmt.Sprint(tc.rel, tc.rel != "") {
			t.Errorf("relOf(%q) under %q = %s", tc.name, tc.root, got)
		}
	}
}
