package apikeys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeChecker answers from a table of valid keys and counts its lookups.
// It stands for the Postgres store, whose own tests run on Postgres; here
// only the cache's bookkeeping is under test, with a clock it controls.
type fakeChecker struct {
	mu    sync.Mutex
	calls int
	valid map[string]Identity
}

func (f *fakeChecker) Check(_ context.Context, key string) (Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if id, ok := f.valid[key]; ok {
		return id, nil
	}
	return Identity{}, ErrInvalid
}

func (f *fakeChecker) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeChecker) set(key string, id *Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == nil {
		delete(f.valid, key)
		return
	}
	f.valid[key] = *id
}

func newTestCache() (*Cache, *fakeChecker, *time.Time) {
	next := &fakeChecker{valid: map[string]Identity{}}
	c := NewCache(next, 0)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	return c, next, &now
}

// A key found invalid is refused from memory for a second: a client
// repeating a bad key costs one lookup a second, not one per request.
// Before, every request with it was a Postgres query.
func TestCacheRemembersInvalidKeysBriefly(t *testing.T) {
	c, next, now := newTestCache()
	for range 5 {
		if _, err := c.Check(context.Background(), "fy_unknown"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := next.lookups(); n != 1 {
		t.Fatalf("%d lookups for 5 checks of one unknown key within a second, want 1", n)
	}
	*now = now.Add(NegativeTTLDefault)
	if _, err := c.Check(context.Background(), "fy_unknown"); !errors.Is(err, ErrInvalid) || next.lookups() != 2 {
		t.Fatalf("after the negative TTL: %v, %d lookups, want ErrInvalid and a second lookup", err, next.lookups())
	}
}

// A key refused from the cache and then made valid (the only way: a key
// is created before anyone can know it, so this is the worst case) is
// accepted within NegativeTTLDefault; a valid key revoked is refused
// within CacheTTLDefault, and then stays refused without lookups.
func TestCacheAnswersChangeWithinASecond(t *testing.T) {
	c, next, now := newTestCache()
	ctx := context.Background()
	if _, err := c.Check(ctx, "fy_new"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	next.set("fy_new", &Identity{ID: 7})
	*now = now.Add(NegativeTTLDefault - time.Millisecond)
	if _, err := c.Check(ctx, "fy_new"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("within the negative TTL: %v, want the cached refusal", err)
	}
	*now = now.Add(time.Millisecond)
	if id, err := c.Check(ctx, "fy_new"); err != nil || id.ID != 7 {
		t.Fatalf("a created key %s after a refusal: %+v %v", NegativeTTLDefault, id, err)
	}
	if !c.Known("fy_new") {
		t.Fatal("a valid key is not Known")
	}

	next.set("fy_new", nil) // revoked
	*now = now.Add(CacheTTLDefault)
	if _, err := c.Check(ctx, "fy_new"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked key %s later: %v", CacheTTLDefault, err)
	}
	if c.Known("fy_new") {
		t.Fatal("a revoked key is still Known")
	}
	before := next.lookups()
	if _, err := c.Check(ctx, "fy_new"); !errors.Is(err, ErrInvalid) || next.lookups() != before {
		t.Fatalf("revoked key again: %v, %d lookups, want a refusal from memory", err, next.lookups()-before)
	}
}

// Neither the valid nor the invalid keys remembered grow past cacheMax,
// whatever a client sends; Known never asks the store.
func TestCacheIsBounded(t *testing.T) {
	c, next, _ := newTestCache()
	ctx := context.Background()
	for i := range cacheMax + 500 {
		key := fmt.Sprintf("fy_%d", i)
		if i%2 == 0 {
			next.set(key, &Identity{ID: int64(i)})
		}
		_, _ = c.Check(ctx, key)
	}
	c.mu.Lock()
	valid, invalid := len(c.keys), len(c.invalid)
	c.mu.Unlock()
	if valid > cacheMax || invalid > cacheMax {
		t.Fatalf("cache holds %d valid and %d invalid keys, want at most %d each", valid, invalid, cacheMax)
	}
	before := next.lookups()
	for i := range 100 {
		c.Known(fmt.Sprintf("fy_never_%d", i))
	}
	if next.lookups() != before {
		t.Fatalf("Known made %d lookups, want none", next.lookups()-before)
	}
}
