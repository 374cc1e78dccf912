package api

import (
	"fmt"
	"sync"
	"time"
)

// wantingFor is how long a key refused a slot counts as waiting for one:
// its Retry-After is 1 s, so a client that retries keeps its claim.
const wantingFor = 5 * time.Second

// uploadSlots bounds the uploads in flight in this process, and shares
// them between API keys: alone, a key may take every slot; while other
// keys hold slots or were just refused one, each may hold at most
// max(1, total / keys), and at most perKey if set. A key over its share
// keeps the uploads it has (they are never cut for it) but gets no new
// slot, so the slots it frees go to the keys waiting.
type uploadSlots struct {
	total  int
	perKey int
	mu     sync.Mutex
	used   int
	held   map[int64]int
	// wanting are the keys refused a slot, until when they count as
	// waiting for one.
	wanting map[int64]time.Time
}

func newUploadSlots(total, perKey int) *uploadSlots {
	return &uploadSlots{total: total, perKey: perKey, held: map[int64]int{}, wanting: map[int64]time.Time{}}
}

// take claims a slot for key; when it cannot, it says why.
func (u *uploadSlots) take(key int64, now time.Time) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	share := u.shareLocked(key, now)
	switch {
	case u.held[key] >= share:
		return fmt.Sprintf("this API key has %d uploads in progress on this server, its share of %d while other keys upload too",
			u.held[key], u.total), false
	case u.used >= u.total:
		u.wanting[key] = now.Add(wantingFor)
		return "too many uploads in progress on this server", false
	}
	u.used++
	u.held[key]++
	delete(u.wanting, key)
	return "", true
}

// give frees a slot of key.
func (u *uploadSlots) give(key int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used--
	if u.held[key]--; u.held[key] <= 0 {
		delete(u.held, key)
	}
}

// shareLocked is how many slots key may hold now: the slots split evenly
// between the keys holding or wanting one (key among them), at least one,
// and at most perKey.
func (u *uploadSlots) shareLocked(key int64, now time.Time) int {
	keys := len(u.held)
	if u.held[key] == 0 {
		keys++ // key itself
	}
	for k, until := range u.wanting {
		switch {
		case !now.Before(until):
			delete(u.wanting, k)
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
