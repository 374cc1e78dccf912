package apikeys

import (
	"context"
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

// Cache remembers valid keys for a short while, so that a client's burst of
// requests costs one key lookup per TTL instead of one each. A revoked key
// stays accepted for at most the TTL; an expiring key is never accepted
// past its expiry; unknown keys are never cached.
type Cache struct {
	next Checker
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]cached
}

type cached struct {
	key     Identity
	expires time.Time
}

// cacheMax bounds the keys remembered; past it the cache starts afresh.
const cacheMax = 10_000

// NewCache returns a cache in front of next; ttl is CacheTTLDefault when
// zero.
func NewCache(next Checker, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = CacheTTLDefault
	}
	return &Cache{next: next, ttl: ttl, now: time.Now, keys: map[string]cached{}}
}

// Check returns the key's identity, from the cache while it is fresh.
func (c *Cache) Check(ctx context.Context, key string) (Identity, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.keys[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := c.next.Check(ctx, key)
	if err != nil {
		if ok {
			c.mu.Lock()
			delete(c.keys, key)
			c.mu.Unlock()
		}
		return k, err
	}
	until := now.Add(c.ttl)
	if k.ExpiresAt != nil && k.ExpiresAt.Before(until) {
		until = *k.ExpiresAt
	}
	c.mu.Lock()
	if len(c.keys) >= cacheMax {
		clear(c.keys)
	}
	c.keys[key] = cached{key: k, expires: until}
	c.mu.Unlock()
	return k, nil
}
