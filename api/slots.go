package api

import (
	"fmt"
	"sync"
	"time"
)

// activeFor is how long a key counts as uploading after it last took,
// gave back or was refused a slot: a refused client retries after 1 s
// (Retry-After), and one uploading file after file comes back at once, so
// both keep their claim while they go on.
const activeFor = 5 * time.Second

// uploadSlots bounds the uploads in flight in this process, and shares
// them between API keys: alone, a key may take every slot; while other
// keys upload too (they hold a slot, or took, gave back or were refused
// one in the last activeFor), each gets a new slot only while it holds
// fewer than max(1, total / keys), rounded down so that no key can starve
// another, and never more than perKey if set. A key over its share keeps
// the uploads it has (they are never cut for it; a slow one is cut by the
// minimum rate), but the slots it frees go to the others.
type uploadSlots struct {
	total  int
	perKey int
	mu     sync.Mutex
	used   int
	held   map[int64]int
	// active are the keys that took, gave back or were refused a slot
	// lately, until when they count as uploading.
	active map[int64]time.Time
}

func newUploadSlots(total, perKey int) *uploadSlots {
	return &uploadSlots{total: total, perKey: perKey, held: map[int64]int{}, active: map[int64]time.Time{}}
}

// take claims a slot for key; when it cannot, it says why.
func (u *uploadSlots) take(key int64, now time.Time) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	share := u.shareLocked(key, now)
	u.active[key] = now.Add(activeFor)
	switch {
	case u.held[key] >= share:
		return fmt.Sprintf("this API key has %d uploads in progress on this server, its share of %d while other keys upload too",
			u.held[key], u.total), false
	case u.used >= u.total:
		return "too many uploads in progress on this server", false
	}
	u.used++
	u.held[key]++
	return "", true
}

// give frees a slot of key.
func (u *uploadSlots) give(key int64, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used--
	if u.held[key]--; u.held[key] <= 0 {
		delete(u.held, key)
	}
	u.active[key] = now.Add(activeFor)
}

// shareLocked is how many slots key may hold now: the slots split evenly
// between the keys uploading (key among them), at least one, and at most
// perKey. It forgets the keys no longer active.
func (u *uploadSlots) shareLocked(key int64, now time.Time) int {
	keys := len(u.held)
	if u.held[key] == 0 {
		keys++ // key itself
	}
	for k, until := range u.active {
		switch {
		case !now.Before(until):
			delete(u.active, k)
		case k != key && u.held[k] == 0:
			keys++
		}
	}
	share := max(1, u.total/keys)
	if u.perKey > 0 {
		share = min(share, u.perKey)
	}
	return share
}
