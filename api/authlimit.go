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
}

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
// there.
func (f *failedAuths) take(addr string, now time.Time) time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.addrs[addr]
	if !ok {
		if len(f.addrs) >= failedAuthsMax {
			f.pruneLocked(now)
		}
		b = &authBucket{tokens: f.burst, at: now}
		f.addrs[addr] = b
	}
	f.refill(b, now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / f.perSecond * float64(time.Second))
	}
	b.tokens--
	return 0
}

// refund gives back the token a good key's check took.
func (f *failedAuths) refund(addr string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.addrs[addr]; ok {
		b.tokens = min(f.burst, b.tokens+1)
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
		if f.refill(b, now); b.tokens >= f.burst {
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
	if d := s.fails.take(addr, time.Now()); d > 0 {
		if kk, ok := s.keys.(KnownKeys); !ok || !kk.Known(token) {
			return apikeys.Key{}, &authLimitedError{wait: d}
		}
		return s.keys.Check(r.Context(), token) // no token was taken
	}
	k, err := s.keys.Check(r.Context(), token)
	if !errors.Is(err, apikeys.ErrInvalid) {
		s.fails.refund(addr)
	}
	return k, err
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
