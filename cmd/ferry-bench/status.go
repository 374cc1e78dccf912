package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Shape of the bulk-loaded jobs.
var statusTargets = []string{"bench-a", "bench-b", "bench-c", "bench-d"}

const (
	statusBatchSize = 100
	// statusSpan is how far back the loaded jobs were created.
	statusSpan = 30 * 24 * time.Hour
	// statusRetention matches ferry's default: older delivered files are
	// gone, so the sweeper finds no work in the loaded rows.
	statusRetention = 7 * 24 * time.Hour
)

// statusScenario measures ferry's status queries with StatusSmall jobs in
// Postgres, then with StatusLarge, loaded in bulk (COPY) into ferry's jobs
// table with its real indexes.
func statusScenario(ctx context.Context, e *env, rep *report) error {
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
	l := &jobLoader{pool: pool, rng: rand.New(rand.NewPCG(1, 2)),
		start: time.Now().Add(-statusSpan), step: statusSpan / time.Duration(sz.StatusLarge)}
	var queries []statusQuery
	var batchNote string
	type figures struct{ p50, p99 map[string][]float64 }
	var stages [2]figures
	for s, rows := range []int{sz.StatusSmall, sz.StatusLarge} {
		t := time.Now()
		if err := l.load(ctx, rows); err != nil {
			return err
		}
		e.cfg.progress("status: %d rows loaded (COPY, then VACUUM ANALYZE) in %s", rows, time.Since(t).Round(100*time.Millisecond))
		if queries == nil {
			if queries, batchNote, err = statusQueries(ctx, p); err != nil {
				return err
			}
		}
		if err := checkPages(ctx, p, l, queries); err != nil {
			return fmt.Errorf("at %d rows: %w", rows, err)
		}
		stages[s] = figures{p50: map[string][]float64{}, p99: map[string][]float64{}}
		stopProf := e.prof.start(fmt.Sprintf("status-%d", rows), p)
		for r := range e.cfg.Reps {
			for _, q := range queries {
				lat, err := timeQueries(ctx, p, l, q, sz.StatusQueries)
				if err != nil {
					stopProf()
					return err
				}
				stages[s].p50[q.name] = append(stages[s].p50[q.name], percentile(lat, 50))
				stages[s].p99[q.name] = append(stages[s].p99[q.name], percentile(lat, 99))
				if r == 0 {
					e.cfg.progress("status %d rows, %s: p50 %.2f ms, p99 %.2f ms", rows, q.name, percentile(lat, 50), percentile(lat, 99))
				}
			}
		}
		stopProf()
	}
	for _, q := range queries {
		for _, pc := range []string{"p50", "p99"} {
			small, large := stages[0].p50[q.name], stages[1].p50[q.name]
			if pc == "p99" {
				small, large = stages[0].p99[q.name], stages[1].p99[q.name]
			}
			rep.add(row{Figure: fmt.Sprintf("status %s %s at %s rows (vs at %s rows)", q.name, pc, count(sz.StatusLarge), count(sz.StatusSmall)),
				Unit: "ms", Ferry: spreadOf(large), Raw: spreadOf(small), Ratio: spreadOf(ratios(large, small)), Goal: goal{kind: "ratio<=", x: 2}})
		}
	}
	rep.note("Status: rows loaded with COPY into ferry's jobs table (all its indexes), then VACUUM ANALYZE; %d targets, %d-job batches, 94%% SUCCESS, 5%% FAILED, 1%% CANCELED, created over %d days, delivered files older than ferry's retention marked removed. Each figure: %d sequential requests per repetition over keep-alive HTTP, timed at the client (request to last body byte), random job ids / targets / batches. Every list query returns a full page of 100 at both sizes. %s",
		len(statusTargets), statusBatchSize, int(statusSpan.Hours()/24), sz.StatusQueries, batchNote)
	return nil
}

func count(n int) string {
	if n >= 1_000_000 && n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// statusQuery is one kind of status request.
type statusQuery struct {
	name string
	path func(l *jobLoader, rng *rand.Rand) string
	// page is true when the answer is a page of jobs that must be full.
	page bool
}

// statusQueries returns the queries to time, once jobs are loaded. The batch
// summary is GET /v1/batches/{id} when ferry has it, else the batch's job
// list.
func statusQueries(ctx context.Context, p *ferryProc) ([]statusQuery, string, error) {
	qs := []statusQuery{
		{name: "GET /v1/jobs/{id}", path: func(l *jobLoader, rng *rand.Rand) string {
			return "/v1/jobs/" + l.randomID(rng)
		}},
		{name: "GET /v1/jobs?status=FAILED&target=…&limit=100", page: true, path: func(_ *jobLoader, rng *rand.Rand) string {
			return "/v1/jobs?status=FAILED&limit=100&target=" + statusTargets[rng.IntN(len(statusTargets))]
		}},
		// Listings that no single index serves since migration 008: one
		// walk per tenant, one walk per status (jobs/list.go).
		{name: "GET /v1/jobs?status=FAILED&limit=100", page: true, path: func(_ *jobLoader, _ *rand.Rand) string {
			return "/v1/jobs?status=FAILED&limit=100"
		}},
		{name: "GET /v1/jobs?target=…&limit=100", page: true, path: func(_ *jobLoader, rng *rand.Rand) string {
			return "/v1/jobs?limit=100&target=" + statusTargets[rng.IntN(len(statusTargets))]
		}},
	}
	code, err := p.get(ctx, "/v1/batches/"+batchName(0))
	if err != nil {
		return nil, "", err
	}
	if code != http.StatusOK {
		qs = append(qs, statusQuery{name: "GET /v1/jobs?batch=…&limit=100", page: true, path: func(l *jobLoader, rng *rand.Rand) string {
			return "/v1/jobs?limit=100&batch=" + l.randomBatch(rng)
		}})
		return qs, fmt.Sprintf("GET /v1/batches/{id} answered %d (not in this ferry yet): the batch figure is the batch's job list, GET /v1/jobs?batch=…&limit=100.", code), nil
	}
	qs = append(qs, statusQuery{name: "GET /v1/batches/{id}", path: func(l *jobLoader, rng *rand.Rand) string {
		return "/v1/batches/" + l.randomBatch(rng)
	}})
	return qs, "The batch figure is the batch summary, GET /v1/batches/{id}.", nil
}

// checkPages makes sure every query answers 200, list queries with a full
// page, so that the two sizes are compared on the same work.
func checkPages(ctx context.Context, p *ferryProc, l *jobLoader, qs []statusQuery) error {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, q := range qs {
		path := q.path(l, rng)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+p.key)
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		var page struct {
			Jobs []json.RawMessage `json:"jobs"`
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d: %.300s", path, resp.StatusCode, body)
		}
		if q.page {
			if err := json.Unmarshal(body, &page); err != nil {
				return fmt.Errorf("GET %s: want a page of 100 jobs: %w", path, err)
			}
			if len(page.Jobs) != 100 {
				return fmt.Errorf("GET %s: want a page of 100 jobs, got %d", path, len(page.Jobs))
			}
		}
	}
	return nil
}

// timeQueries sends n requests of kind q, after a few unmeasured ones, and
// returns their latencies in milliseconds.
func timeQueries(ctx context.Context, p *ferryProc, l *jobLoader, q statusQuery, n int) ([]float64, error) {
	rng := rand.New(rand.NewPCG(uint64(n), 3))
	lat := make([]float64, 0, n)
	for i := range n + 10 {
		path := q.path(l, rng)
		t := time.Now()
		code, err := p.get(ctx, path)
		d := time.Since(t)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", path, code)
		}
		if i >= 10 {
			lat = append(lat, ms(d))
		}
	}
	return lat, nil
}

// jobLoader bulk-loads realistic finished jobs into ferry's jobs table.
type jobLoader struct {
	pool  *pgxpool.Pool
	rng   *rand.Rand
	start time.Time
	step  time.Duration
	ids   [][16]byte
}

func batchName(b int) string { return fmt.Sprintf("batch-%07d", b) }

func (l *jobLoader) randomID(rng *rand.Rand) string {
	return uuid.UUID(l.ids[rng.IntN(len(l.ids))]).String()
}

func (l *jobLoader) randomBatch(rng *rand.Rand) string {
	// Whole batches only: the last one may still be filling.
	return batchName(rng.IntN(max(1, len(l.ids)/statusBatchSize)))
}

var jobCopyColumns = []string{"id", "target", "batch", "filename", "content_type", "size", "sha256", "object_key",
	"status", "attempts", "max_attempts", "next_attempt_at", "last_error", "remote_id", "enqueued_at",
	"object_deleted_at", "created_at", "updated_at", "finished_at"}

// load adds jobs until the table holds upto, then vacuums and analyzes it
// as a table that size would have been by autovacuum.
func (l *jobLoader) load(ctx context.Context, upto int) error {
	now := time.Now()
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if len(l.ids) >= upto {
			return nil, nil
		}
		return l.row(len(l.ids), now), nil
	})
	if _, err := l.pool.CopyFrom(ctx, pgx.Identifier{"jobs"}, jobCopyColumns, src); err != nil {
		return fmt.Errorf("copy jobs: %w", err)
	}
	if _, err := l.pool.Exec(ctx, "VACUUM (ANALYZE) jobs"); err != nil {
		return fmt.Errorf("vacuum jobs: %w", err)
	}
	return nil
}

// row returns job i, and remembers its id.
func (l *jobLoader) row(i int, now time.Time) []any {
	created := l.start.Add(time.Duration(i) * l.step)
	id := uuidV7(created, l.rng)
	l.ids = append(l.ids, id)
	finished := created.Add(2 * time.Second)
	status, attempts := "SUCCESS", 1
	var lastError, remoteID, deleted any
	switch r := l.rng.IntN(100); {
	case r < 5:
		status, attempts = "FAILED", 10
		lastError = "gave up after 10 attempts: send: status 503 Service Unavailable"
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
	return []any{id, statusTargets[i%len(statusTargets)], batchName(i / statusBatchSize),
		fmt.Sprintf("scan-%07d.pdf", i), "application/pdf", int64(50_000 + l.rng.IntN(500_000)),
		fmt.Sprintf("%x", sum), "objects/" + u, status, attempts, 10, created, lastError, remoteID, created,
		deleted, created, finished, finished}
}

// uuidV7 returns a version 7 UUID with the timestamp t, as ferry makes its
// job ids (uuid.NewV7), so that id order is creation order.
func uuidV7(t time.Time, rng *rand.Rand) [16]byte {
	var u [16]byte
	binary.BigEndian.PutUint64(u[8:], rng.Uint64())
	ms := uint64(t.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	r := rng.Uint32()
	u[6] = 0x70 | byte(r>>8)&0x0f
	u[7] = byte(r)
	u[8] = 0x80 | u[8]&0x3f
	return u
}
