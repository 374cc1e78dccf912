package ui

import (
	"crypto/sha256"
	"net"
	"sync"
	"time"

	xrate "golang.org/x/time/rate"
)

// loginLimits are token buckets of login attempts per client address and
// per key tried, so that no one can churn a key's sessions or guess keys
// fast. They are per process: n API processes allow n times the rate.
type loginLimits struct {
	perAddr, perKey *buckets
}

func newLoginLimits(perMinuteAddr, perMinuteKey int) *loginLimits {
	return &loginLimits{perAddr: newBuckets(perMinuteAddr), perKey: newBuckets(perMinuteKey)}
}

// allow takes a token for a login from addr with key; it returns how long
// to wait when either bucket is empty (and takes nothing then).
func (l *loginLimits) allow(addr, key string, now time.Time) time.Duration {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	sum := sha256.Sum256([]byte(key)) // keys are never kept in clear
	a, k := l.perAddr.get("addr:"+host), l.perKey.get(string(sum[:]))
	ra, rk := a.ReserveN(now, 1), k.ReserveN(now, 1)
	wait := max(ra.DelayFrom(now), rk.DelayFrom(now))
	if wait > 0 {
		ra.CancelAt(now)
		rk.CancelAt(now)
	}
	return wait
}

// buckets is a bounded map of token buckets.
type buckets struct {
	every xrate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*xrate.Limiter
}

// bucketsMax bounds the buckets kept; past it they start afresh (full).
const bucketsMax = 10_000

func newBuckets(perMinute int) *buckets {
	return &buckets{every: xrate.Limit(float64(perMinute) / 60), burst: perMinute, m: map[string]*xrate.Limiter{}}
}

func (b *buckets) get(name string) *xrate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, ok := b.m[name]
	if !ok {
		if len(b.m) >= bucketsMax {
			clear(b.m)
		}
		lim = xrate.NewLimiter(b.every, b.burst)
		b.m[name] = lim
	}
	return lim
}
