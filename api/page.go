package api

import (
	"net/url"
	"strconv"
)

// The largest page each listing gives, one bound per route.
const (
	maxJobsPage    = 1000 // GET /v1/jobs
	maxBatchesPage = 100  // GET /v1/batches
	maxAuditPage   = 1000 // GET /v1/audit
)

// page is where a listing starts and how much of it to give: ?cursor= (the
// next_cursor of the page before, opaque to clients) and ?limit=.
type page struct {
	cursor string
	// limit is 0 when the client gave none: the listing's default.
	limit int
}

// parsePage reads a listing's ?cursor= and ?limit=, the limit between 1
// and max. What a cursor means is the listing's own: the store refuses
// one it never gave (jobs.ErrInvalidCursor).
func parsePage(q url.Values, max int) (page, error) {
	p := page{cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return page{}, badRequest("limit must be between 1 and %d", max)
		}
		p.limit = n
	}
	return p, nil
}

// sequence is the cursor of a listing by sequence number (the audit
// trail's): the last number listed, or 0 for the first page.
func (p page) sequence() (int64, error) {
	if p.cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(p.cursor, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("invalid cursor")
	}
	return n, nil
}
