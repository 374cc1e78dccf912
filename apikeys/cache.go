package apikeys

import (
	"context"
	"sync"
	"time"
)

// Checker checks API keys.
type Checker interface {
	Check(ctx context.Context, key string) (Key, error)
}

// Cache remembers valid keys for a while, so that a client's requests cost
// one key lookup per TTL instead of one each. A revoked key stays accepted
// for at most the TTL; unknown keys are never cached.
type Cache struct {
	next Checker
	ttl  time.Duration
	mu   sync.Mutex
	keys map[string]cached
}

type cached struct {
	key     Key
	expires time.Time
}

// cacheMax bounds the keys remembered; past it the cache starts afresh.
const cacheMax = 10_000

// NewCache returns a cache in front of next.
func NewCache(next Checker, ttl time.Duration) *Cache {
	return &Cache{next: next, ttl: ttl, keys: map[string]cached{}}
}

// Check returns the key's identity, from the cache while it is fresh.
func (c *Cache) Check(ctx context.Context, key string) (Key, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.keys[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := c.next.Check(ctx, key)
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	if len(c.keys) >= cacheMax {
		clear(c.keys)
	}
	c.keys[key] = cached{key: k, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return k, nil
}
