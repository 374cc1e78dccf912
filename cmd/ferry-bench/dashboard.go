package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
)

// The dashboard scenario's shape: ten large batches (migrations), the
// last one still running, 5% of the jobs failed for five reasons (each
// message naming its file, so the grouping has work to do), created over
// ten days so that the last hour holds a few thousand deliveries, with an
// attempt each for the last hour's jobs (some answered 429).
const (
	dashBatches = 10
	dashSpan    = 10 * 24 * time.Hour
)

var dashFailures = []string{
	`send: HTTP 422: file "scan-%07d.pdf" refused: folder not found`,
	`send: HTTP 503: busy, retry after %d s`,
	`send: dial tcp 10.0.0.%d:443: connect: connection refused`,
	`send: HTTP 413: file of %d bytes is over the limit`,
	`gave up after 10 attempts: send: status 503 Service Unavailable (request %d)`,
}

// dashboardScenario times every dashboard page with DashboardSmall and
// then StatusLarge jobs in Postgres, logged in with a session as a browser
// is, over keep-alive HTTP, to the last byte of the page.
func dashboardScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, 0, statusTargets...)})
	if err != nil {
		return err
	}
	defer p.stop()
	b, err := dashLogin(ctx, p)
	if err != nil {
		return err
	}
	l := &dashLoader{pool: pool, rng: rand.New(rand.NewPCG(5, 6)), total: sz.StatusLarge,
		start: time.Now().Add(-dashSpan), step: dashSpan / time.Duration(sz.StatusLarge)}
	pages := dashPages()
	type figures struct{ p50, p95 map[string][]float64 }
	var stages [2]figures
	sizes := []int{sz.StatusSmall, sz.StatusLarge}
	for s, rows := range sizes {
		t := time.Now()
		if err := l.load(ctx, rows); err != nil {
			return err
		}
		e.cfg.progress("dashboard: %d jobs loaded in %s", rows, time.Since(t).Round(100*time.Millisecond))
		stages[s] = figures{p50: map[string][]float64{}, p95: map[string][]float64{}}
		stopProf := e.prof.start(fmt.Sprintf("dashboard-%d", rows), p)
		for r := range e.cfg.Reps {
			for _, pg := range pages {
				lat, err := b.time(ctx, l, pg, dashLoads(sz))
				if err != nil {
					stopProf()
					return fmt.Errorf("at %d jobs: %w", rows, err)
				}
				stages[s].p50[pg.name] = append(stages[s].p50[pg.name], percentile(lat, 50))
				stages[s].p95[pg.name] = append(stages[s].p95[pg.name], percentile(lat, 95))
				if r == 0 {
					e.cfg.progress("dashboard %d jobs, %s: p50 %.1f ms, p95 %.1f ms", rows, pg.name, percentile(lat, 50), percentile(lat, 95))
				}
			}
		}
		stopProf()
	}
	for _, pg := range pages {
		large, small := stages[1].p95[pg.name], stages[0].p95[pg.name]
		rep.add(row{Figure: fmt.Sprintf("dashboard %s p95 at %s jobs (vs at %s)", pg.name, count(sz.StatusLarge), count(sz.StatusSmall)),
			Unit: "ms", Ferry: spreadOf(large), Raw: spreadOf(small), Ratio: spreadOf(ratios(large, small)),
			Goal: goal{kind: "value<", x: 200, unit: "ms"}})
	}
	rep.note("Dashboard: jobs loaded with COPY (every index and trigger of ferry's schema), then VACUUM ANALYZE; %d batches of %s jobs, the last one still running; 5%% FAILED for %d reasons whose messages name the file; created over %d days. Each figure: %d sequential page loads per repetition by a logged-in session (cookie), timed at the client to the last byte of the HTML; the whole page, as a first load renders it (the live refresh renders the same data).",
		dashBatches, count(sz.StatusLarge/dashBatches), len(dashFailures), int(dashSpan.Hours()/24), dashLoads(sz))
	return nil
}

// dashPage is one page of the dashboard to time.
type dashPage struct {
	name string
	path func(l *dashLoader, rng *rand.Rand) string
}

func dashPages() []dashPage {
	return []dashPage{
		{"overview /ui/", func(*dashLoader, *rand.Rand) string { return "/ui/" }},
		{"batch page", func(_ *dashLoader, rng *rand.Rand) string {
			return "/ui/batches/" + dashBatch(rng.IntN(dashBatches))
		}},
		{"jobs list", func(*dashLoader, *rand.Rand) string { return "/ui/jobs" }},
		{"jobs list, FAILED of a target and batch", func(_ *dashLoader, rng *rand.Rand) string {
			return "/ui/jobs?status=FAILED&target=" + statusTargets[rng.IntN(len(statusTargets))] + "&batch=" + dashBatch(rng.IntN(dashBatches))
		}},
		{"jobs list, file name contains", func(l *dashLoader, rng *rand.Rand) string {
			return "/ui/jobs?filename=" + url.QueryEscape(fmt.Sprintf("scan-%05d", rng.IntN(max(1, l.n/100))))
		}},
		{"jobs list, page 50", func(l *dashLoader, rng *rand.Rand) string {
			return "/ui/jobs?cursor=" + uuid.UUID(l.ids[max(0, len(l.ids)-1-50*50-rng.IntN(100))]).String()
		}},
		{"job page", func(l *dashLoader, rng *rand.Rand) string {
			return "/ui/jobs/" + uuid.UUID(l.ids[rng.IntN(len(l.ids))]).String()
		}},
	}
}

func dashBatch(i int) string { return fmt.Sprintf("migration-%02d", i) }

// dashBrowser is a logged-in dashboard session.
type dashBrowser struct {
	p  *ferryProc
	hc *http.Client
}

var dashCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashLogin logs in to the dashboard with the benchmark's key.
func dashLogin(ctx context.Context, p *ferryProc) (*dashBrowser, error) {
	jar, _ := cookiejar.New(nil)
	b := &dashBrowser{p: p, hc: &http.Client{Transport: p.client.Transport, Jar: jar}}
	_, page, err := b.get(ctx, "/ui/")
	if err != nil {
		return nil, err
	}
	m := dashCSRF.FindStringSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("dashboard: no login form at /ui/ (is the dashboard in this ferry?)")
	}
	form := url.Values{"key": {p.key}, "csrf": {m[1]}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Overview") {
		return nil, fmt.Errorf("dashboard login: status %d", resp.StatusCode)
	}
	return b, nil
}

func (b *dashBrowser) get(ctx context.Context, path string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.p.url+path, nil)
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// time loads page n times, after a few unmeasured loads, and returns the
// latencies in milliseconds.
func (b *dashBrowser) time(ctx context.Context, l *dashLoader, pg dashPage, n int) ([]float64, error) {
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	lat := make([]float64, 0, n)
	for i := range n + 5 {
		path := pg.path(l, rng)
		t := time.Now()
		code, body, err := b.get(ctx, path)
		d := time.Since(t)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK || !strings.Contains(body, "</html>") {
			return nil, fmt.Errorf("GET %s: status %d: %.300s", path, code, body)
		}
		if i >= 5 {
			lat = append(lat, ms(d))
		}
	}
	return lat, nil
}

// dashLoader bulk-loads the dashboard scenario's jobs.
type dashLoader struct {
	pool  *pgxpool.Pool
	rng   *rand.Rand
	total int
	start time.Time
	step  time.Duration
	ids   [][16]byte
	n     int
}

// load adds jobs until the table holds upto, and attempts for those of the
// last hour, then vacuums and analyzes.
func (l *dashLoader) load(ctx context.Context, upto int) error {
	now := time.Now()
	// Jobs are spread over the whole span whatever the size: the first
	// stage takes every hundredth slot of the final timeline.
	stride := max(1, l.total/upto)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if l.n >= upto {
			return nil, nil
		}
		slot := l.n
		if upto < l.total {
			slot = l.n * stride
		}
		l.n++
		return l.row(slot, now), nil
	})
	if _, err := l.pool.CopyFrom(ctx, pgx.Identifier{"jobs"}, jobCopyColumns, src); err != nil {
		return fmt.Errorf("copy jobs: %w", err)
	}
	// One attempt for each job finished within the last hour, one in ten
	// answered 429 before it.
	_, err := l.pool.Exec(ctx, `
		INSERT INTO attempts (job_id, number, worker, started_at, finished_at, outcome, http_status, error)
		SELECT id, 1, 'bench/1', finished_at - interval '1 second', finished_at,
			CASE WHEN random() < 0.1 THEN 'RETRY' ELSE 'SUCCESS' END,
			CASE WHEN random() < 0.1 THEN 429 ELSE 201 END, NULL
		FROM jobs WHERE finished_at > now() - interval '1 hour' AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id)`)
	if err != nil {
		return fmt.Errorf("attempts: %w", err)
	}
	// Fold the batch counts the COPY appended (one row per job), as the
	// first summaries of a live system would have done a little at a time,
	// then vacuum as autovacuum would have.
	store := jobs.NewStore(l.pool)
	for b := range dashBatches {
		if err := store.CompactBatchCounts(ctx, apikeys.TenantDefault, dashBatch(b)); err != nil {
			return err
		}
	}
	if _, err := l.pool.Exec(ctx, "VACUUM (ANALYZE) jobs, attempts, batch_counts"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// row returns the job in slot i of the timeline.
func (l *dashLoader) row(i int, now time.Time) []any {
	created := l.start.Add(time.Duration(i) * l.step)
	id := uuidV7(created, l.rng)
	l.ids = append(l.ids, id)
	finished := created.Add(2 * time.Second)
	batch := i * dashBatches / l.total
	status, attempts := "SUCCESS", 1
	var lastError, remoteID, deleted, finishedAt any = nil, nil, nil, finished
	next := created
	switch r := l.rng.IntN(100); {
	case batch == dashBatches-1 && i > l.total-l.total/(4*dashBatches):
		// The last quarter of the last batch is waiting for a retry due
		// tomorrow (so that the ferry under test leaves it alone).
		status, attempts, finishedAt, next = "RETRYING", 3, nil, now.Add(24*time.Hour)
		lastError = "send: HTTP 503: busy"
	case r < 5:
		status, attempts = "FAILED", 10
		lastError = fmt.Sprintf(dashFailures[l.rng.IntN(len(dashFailures))], i)
	case r < 6:
		status, attempts = "CANCELED", 0
	default:
		remoteID = fmt.Sprintf("doc-%d", i)
		if now.Sub(finished) > statusRetention {
			deleted = finished.Add(statusRetention)
		}
	}
	var sum [32]byte
	binary.BigEndian.PutUint64(sum[:], l.rng.Uint64())
	binary.BigEndian.PutUint64(sum[8:], uint64(i))
	u := uuid.UUID(id).String()
	updated := finished
	if finishedAt == nil {
		updated = created
	}
	return []any{id, statusTargets[i%len(statusTargets)], dashBatch(batch),
		fmt.Sprintf("scan-%07d.pdf", i), "application/pdf", int64(50_000 + l.rng.IntN(500_000)),
		fmt.Sprintf("%x", sum), "objects/" + u, status, attempts, 10, next, lastError, remoteID, created,
		deleted, created, updated, finishedAt}
}

// dashLoads is how many times each page is loaded per repetition.
func dashLoads(sz Sizes) int { return max(2, sz.StatusQueries/8) }
