package apikeys

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Checker checks API keys.
type Checker interface {
	Check(ctx context.Context, key string) (Identity, error)
}

// CacheTTLDefault is how long a checked key is trusted without asking
// Postgres again: a revoked key is refused by every process within it.
const CacheTTLDefault = time.Second

// NegativeTTLDefault is how long a key found invalid (unknown, revoked or
// expired) is refused without asking Postgres again. Keys are random and
// shown only once created, so no client can present a key before it
// exists; the bound is short all the same, so that no cached refusal
// outlives a second.
const NegativeTTLDefault = time.Second

// Cache remembers checked keys for a short while, so that a client's burst
// of requests costs one key lookup per TTL instead of one each. A revoked
// key stays accepted for at most the TTL; an expiring key is never
// accepted past its expiry. A key found invalid is refused from the cache
// for NegativeTTLDefault, so that a client repeating a bad key costs one
// lookup a second; random unknown keys are the API's per-address limit's
// business (they never repeat).
type Cache struct {
	next   Checker
	ttl    time.Duration
	negTTL time.Duration
	now    func() time.Time
	mu     sync.Mutex
	keys   map[string]cached
	// invalid holds the SHA-256 of keys found invalid, until when they
	// are refused without a lookup.
	invalid map[[sha256.Size]byte]time.Time
}

type cached struct {
	key     Identity
	expires time.Time
}

// cacheMax bounds the keys remembered, valid and invalid each; past it
// the expired entries are dropped, or if none is, the cache starts afresh.
const cacheMax = 10_000

// NewCache returns a cache in front of next; ttl is CacheTTLDefault when
// zero.
func NewCache(next Checker, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = CacheTTLDefault
	}
	return &Cache{next: next, ttl: ttl, negTTL: NegativeTTLDefault, now: time.Now,
		keys: map[string]cached{}, invalid: map[[sha256.Size]byte]time.Time{}}
}

// Check returns the key's identity, from the cache while it is fresh.
func (c *Cache) Check(ctx context.Context, key string) (Identity, error) {
	now := c.now()
	if k, ok, err := c.lookup(key, now); ok {
		return k, err
	}
	k, err := c.next.Check(ctx, key)
	switch {
	case errors.Is(err, ErrInvalid):
		c.refuse(key, now)
		return k, err
	case err != nil:
		return k, err
	}
	until := now.Add(c.ttl)
	if k.ExpiresAt != nil && k.ExpiresAt.Before(until) {
		until = *k.ExpiresAt
	}
	c.mu.Lock()
	if len(c.keys) >= cacheMax {
		pruneExpired(c.keys, now, func(e cached) time.Time { return e.expires })
	}
	c.keys[key] = cached{key: k, expires: until}
	c.mu.Unlock()
	return k, nil
}

// Known reports whether key was valid when last checked, without asking
// Postgres, however long ago that was (as long as memory serves): a key a
// caller may afford to check for a client it otherwise refuses unchecked
// (the API's limit on invalid keys per address). Such a key is still
// checked: a revoked one is refused as ever.
func (c *Cache) Known(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[key]
	return ok
}

// lookup answers from the cache: ok is false when it holds nothing fresh
// for key.
func (c *Cache) lookup(key string, now time.Time) (Identity, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.keys[key]; ok && now.Before(e.expires) {
		// A stale entry stays until the key is checked again (or
		// pruned): it tells Known keys.
		return e.key, true, nil
	}
	sum := sha256.Sum256([]byte(key))
	if until, ok := c.invalid[sum]; ok {
		if now.Before(until) {
			return Identity{}, true, ErrInvalid
		}
		delete(c.invalid, sum)
	}
	return Identity{}, false, nil
}

// refuse remembers that key was found invalid at now.
func (c *Cache) refuse(key string, now time.Time) {
	sum := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.keys, key)
	if len(c.invalid) >= cacheMax {
		pruneExpired(c.invalid, now, func(t time.Time) time.Time { return t })
	}
	c.invalid[sum] = now.Add(c.negTTL)
}

// pruneExpired drops the entries of m expired at now; if none was, it
// empties m, so that m never grows past cacheMax.
func pruneExpired[K comparable, V any](m map[K]V, now time.Time, expires func(V) time.Time) {
	for k, v := range m {
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
	if len(m) >= cacheMax {
		clear(m)
	}
}
