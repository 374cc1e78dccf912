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
	"golang.org/x/time/rate"

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
// key cache cannot stop them.
type failedAuths struct {
	every rate.Limit
	burst int
	mu    sync.Mutex
	addrs map[string]*rate.Limiter
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
	return &failedAuths{every: rate.Limit(perSecond), burst: burst, addrs: map[string]*rate.Limiter{}}
}

// wait returns how long addr must wait before its next key may be looked
// up; 0 means now.
func (f *failedAuths) wait(addr string, now time.Time) time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	lim, ok := f.addrs[addr]
	f.mu.Unlock()
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(f.every) * float64(time.Second))
}

// failed takes a token of addr's bucket.
func (f *failedAuths) failed(addr string, now time.Time) {
	if f == nil {
		return
	}
	f.mu.Lock()
	lim, ok := f.addrs[addr]
	if !ok {
		if len(f.addrs) >= failedAuthsMax {
			f.pruneLocked(now)
		}
		lim = rate.NewLimiter(f.every, f.burst)
		f.addrs[addr] = lim
	}
	f.mu.Unlock()
	lim.AllowN(now, 1)
}

func (f *failedAuths) pruneLocked(now time.Time) {
	for a, lim := range f.addrs {
		if lim.TokensAt(now) >= float64(f.burst) {
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
	addr, now := clientAddr(r), time.Now()
	if d := s.fails.wait(addr, now); d > 0 {
		if kk, ok := s.keys.(KnownKeys); !ok || !kk.Known(token) {
			return apikeys.Key{}, &authLimitedError{wait: d}
		}
	}
	k, err := s.keys.Check(r.Context(), token)
	if errors.Is(err, apikeys.ErrInvalid) {
		s.fails.failed(addr, now)
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
