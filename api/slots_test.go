package api

import (
	"testing"
	"time"
)

// The share of upload slots, step by step on a clock of the test's: a key
// alone takes every slot; once another key is refused, the first gets no
// new slot until it holds less than its share, and the freed one goes to
// the other, which keeps its claim while it uploads file after file; the
// share is rounded down, so no key can starve another; a key stops
// counting activeFor after it last asked; a fixed per-key cap holds with
// slots free.
func TestUploadSlotsShare(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	u := newUploadSlots(4, 0)
	const a, b, c = 1, 2, 3
	take := func(key int64, want bool) {
		t.Helper()
		if msg, ok := u.take(key, now); ok != want {
			t.Fatalf("key %d: took %v (%q), want %v; held %v", key, ok, msg, want, u.held)
		}
	}
	for range 4 {
		take(a, true) // alone: every slot
	}
	take(b, false) // full: b now wants one
	u.give(a, now)
	take(a, false) // a holds 3, over its share of 2 while b waits
	take(b, true)
	u.give(b, now) // b's file is in; b comes back with the next
	take(a, false) // b still counts: a holds 3, its share is 2
	take(b, true)
	take(c, false) // full again: c wants one too
	u.give(a, now)
	u.give(a, now)
	take(a, false) // a holds 1, its share of 4/3 keys
	take(c, true)
	// Each at its share of 4/3 = 1: the fourth slot stays free for
	// whichever key drops below.
	take(c, false)
	take(b, false)
	if u.used != 3 || u.held[a] != 1 || u.held[b] != 1 || u.held[c] != 1 {
		t.Fatalf("used %d, held %v", u.used, u.held)
	}

	// Once the others are done and no longer upload, a may take every
	// slot again.
	u.give(b, now)
	u.give(c, now)
	now = now.Add(activeFor)
	take(a, true)
	take(a, true)
	take(a, true)
	if len(u.active) != 1 {
		t.Fatalf("active %v, want only a", u.active)
	}

	capped := newUploadSlots(4, 1)
	if _, ok := capped.take(a, now); !ok {
		t.Fatal("first slot under a cap of 1")
	}
	if _, ok := capped.take(a, now); ok {
		t.Fatal("second slot of one key under a cap of 1")
	}
}
