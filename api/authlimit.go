package api

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// Defaults of the limit on failed authentications.
const (
	// AuthFailureLimitDefault is how many unknown, revoked or expired keys
	// one client address may present per second, on average, before it
	// is answered 429 without a key lookup.
	AuthFailureLimitDefault = 5.0
	// AuthFailureBurstDefault is how many it may present at once.
	AuthFailureBurstDefault = 20
)

var authLimited = promauto.NewCounter(prometheus.CounterOpts{
	Name: "ferry_http_auth_failures_limited_total",
	Help: "Requests refused with 429 because their client address sent too many invalid API keys.",
})

// KnownKeys is what a KeyChecker may also offer: whether a key was valid
// when last checked, from memory only; *apikeys.Cache does. A client
// address over its failure limit still has such keys checked (and so
// served, unless revoked), so that one attacker behind a shared address (a
// NAT, a proxy) does not lock out the clients already working there.
type KnownKeys interface {
	Known(key string) bool
}

// failedAuths is a token bucket per client address that each failed
// authentication takes a token from: unknown keys cost a Postgres query
// each, and random ones never repeat, so the per-key rate limit and the
// key cache cannot stop them. A check takes its token before the lookup
// and gets it back if the key is good, so that many connections of one
// address cannot all pass while a token is left.
type failedAuths struct {
	perSecond float64
	burst     float64
	mu        sync.Mutex
	addrs     map[string]*authBucket
}

type authBucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
	// pending counts the checks under way that hold a token: each gives
	// it back (a good key) or spends it (a bad one).
	pending int
	// wake is closed, and replaced, whenever a pending check ends.
	wake chan struct{}
}

// authWaitMax bounds how long a request waits for the tokens its
// address's checks under way may give back: a burst of connections with a
// good key, all arriving before the first check ends, must not be refused.
const authWaitMax = 2 * time.Second

// failedAuthsMax bounds the addresses tracked; past it the idle (full)
// buckets are dropped, or if none is, all start afresh.
const failedAuthsMax = 10_000

// newFailedAuths returns the limit, or nil (no limit) for a negative rate.
func newFailedAuths(perSecond float64, burst int) *failedAuths {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = AuthFailureLimitDefault
	}
	if burst <= 0 {
		burst = AuthFailureBurstDefault
	}
	return &failedAuths{perSecond: perSecond, burst: float64(burst), addrs: map[string]*authBucket{}}
}

// take takes a token of addr's bucket, or returns how long until one is
// there and, while checks holding tokens are under way, a channel closed
// when one ends (it may give its token back).
func (f *failedAuths) take(addr string, now time.Time) (time.Duration, <-chan struct{}) {
	if f == nil {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.addrs[addr]
	if !ok {
		if len(f.addrs) >= failedAuthsMax {
			f.pruneLocked(now)
		}
		b = &authBucket{tokens: f.burst, at: now, wake: make(chan struct{})}
		f.addrs[addr] = b
	}
	f.refill(b, now)
	if b.tokens < 1 {
		d := time.Duration((1 - b.tokens) / f.perSecond * float64(time.Second))
		if b.pending == 0 {
			return d, nil
		}
		return d, b.wake
	}
	b.tokens--
	b.pending++
	return 0, nil
}

// refund gives back the token a good key's check took.
func (f *failedAuths) refund(addr string) { f.end(addr, 1) }

// spend ends a bad key's check: its token stays taken.
func (f *failedAuths) spend(addr string) { f.end(addr, 0) }

func (f *failedAuths) end(addr string, back float64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.addrs[addr]; ok {
		b.tokens = min(f.burst, b.tokens+back)
		b.pending = max(0, b.pending-1)
		close(b.wake)
		b.wake = make(chan struct{})
	}
}

func (f *failedAuths) refill(b *authBucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(f.burst, b.tokens+now.Sub(b.at).Seconds()*f.perSecond)
		b.at = now
	}
}

func (f *failedAuths) pruneLocked(now time.Time) {
	for a, b := range f.addrs {
		if f.refill(b, now); b.tokens >= f.burst && b.pending == 0 {
			delete(f.addrs, a)
		}
	}
	if len(f.addrs) >= failedAuthsMax {
		clear(f.addrs)
	}
}

// authLimitedError refuses a key unchecked: its client address is over
// its failure limit.
type authLimitedError struct{ wait time.Duration }

func (e *authLimitedError) Error() string {
	return "too many invalid API keys from this address: retry after " + strconv.Itoa(e.seconds()) + "s"
}

func (e *authLimitedError) seconds() int { return max(1, int(math.Ceil(e.wait.Seconds()))) }

// checkKey checks token as the client at r's address: while that address
// is over its failure limit, only a key known good is checked, any other
// refused unchecked; a refusal by the check counts against the address.
func (s *Server) checkKey(r *http.Request, token string) (apikeys.Key, error) {
	addr := clientAddr(r)
	if err := s.takeAuthToken(r, addr, token); errors.Is(err, errKnownKey) {
		return s.keys.Check(r.Context(), token) // no token was taken
	} else if err != nil {
		return apikeys.Key{}, err
	}
	k, err := s.keys.Check(r.Context(), token)
	if errors.Is(err, apikeys.ErrInvalid) {
		s.fails.spend(addr)
	} else {
		s.fails.refund(addr)
	}
	return k, err
}

// errKnownKey: the address is over its limit, but the key is known good.
var errKnownKey = errors.New("known key")

// takeAuthToken takes a token for a check of token from addr. Over the
// limit, a known good key is checked without one (errKnownKey); any other
// waits, at most authWaitMax, for the checks under way from addr to give
// their tokens back, and is refused (*authLimitedError) if none does.
func (s *Server) takeAuthToken(r *http.Request, addr, token string) error {
	deadline := time.Now().Add(authWaitMax)
	for {
		d, wake := s.fails.take(addr, time.Now())
		if d == 0 {
			return nil
		}
		if kk, ok := s.keys.(KnownKeys); ok && kk.Known(token) {
			return errKnownKey
		}
		left := time.Until(deadline)
		if wake == nil || left <= 0 {
			return &authLimitedError{wait: d}
		}
		t := time.NewTimer(min(d, left))
		select {
		case <-wake:
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return &authLimitedError{wait: d}
		}
		t.Stop()
	}
}

// refuseLimited answers 429 with Retry-After to a client over its failure
// limit.
func refuseLimited(w http.ResponseWriter, e *authLimitedError) {
	authLimited.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(e.seconds()))
	writeError(w, http.StatusTooManyRequests, "rate_limited", e.Error())
}

// clientAddr is the address a request's failures are counted against: the
// peer's IP (a proxy's, behind one), an IPv6 one by its /64, which one
// host usually holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
