package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// limiters is a token bucket per API key. The buckets are per process: n
// API processes let a key make up to n times the rate.
type limiters struct {
	every rate.Limit
	burst int
	mu    sync.Mutex
	keys  map[int64]*rate.Limiter
}

// limitersMax bounds the buckets kept; past it they start afresh (full).
const limitersMax = 10_000

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &limiters{every: rate.Limit(perSecond), burst: burst, keys: map[int64]*rate.Limiter{}}
}

// wait returns how long key must wait before its next request; 0 means it
// may go now (and a token is taken).
func (l *limiters) wait(key int64, now time.Time) time.Duration {
	l.mu.Lock()
	lim, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= limitersMax {
			clear(l.keys)
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.keys[key] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	d := res.DelayFrom(now)
	if d > 0 {
		res.CancelAt(now)
	}
	return d
}

// allow answers 429 with Retry-After and returns false when key is over its
// rate (FERRY_RATE_LIMIT); with no limit configured it always allows.
func (s *Server) allow(w http.ResponseWriter, key apikeys.Key) bool {
	if s.limits == nil {
		return true
	}
	d := s.limits.wait(key.ID, time.Now())
	if d <= 0 {
		return true
	}
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	writeError(w, http.StatusTooManyRequests, "rate_limited",
		"too many requests for this API key: retry after "+strconv.Itoa(max(1, secs))+"s")
	rateLimited.Inc()
	return false
}
