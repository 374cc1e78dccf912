package storage

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
)

func TestRecentKeepsTheNewestWithinItsMemory(t *testing.T) {
	t.Parallel()
	type step struct {
		op   string // add, drop, wait
		key  string
		size int
		d    time.Duration
	}
	tests := []struct {
		name  string
		max   int64
		steps []step
		kept  []string
		gone  []string
		bytes int64
	}{
		{"fits", 100, []step{{"add", "a", 40, 0}, {"add", "b", 40, 0}}, []string{"a", "b"}, nil, 80},
		{"oldest leaves first", 100, []step{{"add", "a", 40, 0}, {"add", "b", 40, 0}, {"add", "c", 40, 0}}, []string{"b", "c"}, []string{"a"}, 80},
		{"a file larger than the memory is not kept", 100, []step{{"add", "a", 40, 0}, {"add", "big", 101, 0}}, []string{"a"}, []string{"big"}, 40},
		{"a file larger than RecentFileMax is not kept", 4 * RecentFileMax, []step{{"add", "big", RecentFileMax + 1, 0}}, nil, []string{"big"}, 0},
		{"replacing a key frees its old bytes", 100, []step{{"add", "a", 60, 0}, {"add", "a", 30, 0}, {"add", "b", 60, 0}}, []string{"a", "b"}, nil, 90},
		{"dropped", 100, []step{{"add", "a", 40, 0}, {"add", "b", 40, 0}, {"drop", "a", 0, 0}}, []string{"b"}, []string{"a"}, 40},
		{"expired", 100, []step{{"add", "a", 40, 0}, {"wait", "", 0, recentTTL / 2}, {"add", "b", 40, 0}, {"wait", "", 0, recentTTL / 2}}, []string{"b"}, []string{"a"}, 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1e9, 0)
			r := newRecent(tc.max)
			r.now = func() time.Time { return now }
			for _, s := range tc.steps {
				switch s.op {
				case "add":
					r.add(s.key, bytes.Repeat([]byte(s.key[:1]), s.size))
				case "drop":
					r.drop(s.key)
				case "wait":
					now = now.Add(s.d)
				}
			}
			for _, k := range tc.kept {
				if b, ok := r.get(k); !ok || len(b) == 0 || b[0] != k[0] {
					t.Errorf("%s: not kept", k)
				}
			}
			for _, k := range tc.gone {
				if _, ok := r.get(k); ok {
					t.Errorf("%s: still kept", k)
				}
			}
			if got := r.bytes(); got != tc.bytes {
				t.Errorf("memory used %d, want %d", got, tc.bytes)
			}
		})
	}
}

func TestRecentKeepsACopy(t *testing.T) {
	t.Parallel()
	r := newRecent(100)
	b := []byte("original")
	r.add("k", b)
	copy(b, "CHANGED!")
	if got, _ := r.get("k"); string(got) != "original" {
		t.Errorf("kept %q: the caller's buffer, not a copy", got)
	}
}

func TestRecentOffKeepsNothing(t *testing.T) {
	t.Parallel()
	r := newRecent(0)
	r.add("k", []byte("x"))
	if _, ok := r.get("k"); ok || r.bytes() != 0 {
		t.Error("a store without recent-files memory kept a file")
	}
}

func TestRecentEmptiesWhileIdle(t *testing.T) {
	t.Parallel()
	r := newRecent(100)
	r.ttl = 20 * time.Millisecond
	// b is 5 ms younger than a, by the clock the memory reads: the timer
	// for a must arm another for b.
	var skew atomic.Int64
	r.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	r.add("a", []byte("aaaa"))
	skew.Store(int64(5 * time.Millisecond))
	r.add("b", []byte("bbbb"))
	deadline := time.Now().Add(5 * time.Second)
	for r.bytes() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.bytes(); n != 0 {
		t.Fatalf("an idle memory still holds %d bytes after its files expired", n)
	}
	r.add("c", []byte("cc"))
	r.close()
	if _, ok := r.get("c"); ok || r.bytes() != 0 {
		t.Error("close kept a file")
	}
}
