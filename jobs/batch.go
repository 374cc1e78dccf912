package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-relay/ferry/apitypes"
)

// A batch is a named set of jobs: one migration of a document tree. Jobs
// name their batch by its name. A batch object (CreateBatch) gives the
// uploads naming it a default target and parameters; a name used by
// uploads without an object is a plain label, and still has a summary and
// a report.

// Errors about batches.
var (
	// ErrBatchNotFound means no batch object and no job has that name.
	ErrBatchNotFound = errors.New("batch not found")
	// ErrBatchExists means a batch of that name exists with another target
	// or other parameters.
	ErrBatchExists = errors.New("batch exists with another target or parameters")
)

// MaxBatchName is the longest batch name, in bytes: the API's rule.
const MaxBatchName = apitypes.MaxBatchName

// CheckBatchName returns why name cannot name a batch, or nil. The rule is
// the API's (names go in URL paths), kept in one place.
func CheckBatchName(name string) error { return apitypes.CheckBatchName(name) }

// Batch is a batch object.
type Batch struct {
	Name string
	// Tenant owns the batch; set by the API from the key, never taken from
	// the client.
	Tenant    string
	Target    string
	Params    map[string]string
	CreatedAt time.Time
}

// CreateBatch records a batch object. If one of that name exists with the
// same target and parameters it is returned with created=false; with
// others, ErrBatchExists.
func (s *Store) CreateBatch(ctx context.Context, b Batch, apiKeyID int64) (Batch, bool, error) {
	if err := CheckBatchName(b.Name); err != nil {
		return Batch{}, false, err
	}
	if b.Params == nil {
		b.Params = map[string]string{}
	}
	if b.Tenant == "" {
		b.Tenant = TenantDefault
	}
	var out Batch
	err := s.db.QueryRow(ctx, `
		INSERT INTO batches (name, target, params, api_key_id, tenant) VALUES ($1, $2, $3, nullif($4, 0), $5)
		ON CONFLICT (tenant, name) DO NOTHING
		RETURNING name, tenant, target, params, created_at`, b.Name, b.Target, b.Params, apiKeyID, b.Tenant).
		Scan(&out.Name, &out.Tenant, &out.Target, &out.Params, &out.CreatedAt)
	if err == nil {
		return out, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, false, fmt.Errorf("create batch %q: %w", b.Name, err)
	}
	out, err = s.Batch(ctx, b.Tenant, b.Name)
	if err != nil {
		return Batch{}, false, err
	}
	if out.Target != b.Target || !maps.Equal(out.Params, b.Params) {
		return out, false, fmt.Errorf("batch %q is for target %s with params %v: %w", b.Name, out.Target, out.Params, ErrBatchExists)
	}
	return out, false, nil
}

// Batch returns the batch object named name, or ErrBatchNotFound.
func (s *Store) Batch(ctx context.Context, tenant, name string) (Batch, error) {
	var b Batch
	err := s.db.QueryRow(ctx, `SELECT name, tenant, target, params, created_at FROM batches
		WHERE tenant = $1 AND name = $2`, tenant, name).
		Scan(&b.Name, &b.Tenant, &b.Target, &b.Params, &b.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, fmt.Errorf("batch %q: %w", name, ErrBatchNotFound)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("batch %q: %w", name, err)
	}
	return b, nil
}

// Count is a number of jobs and their bytes.
type Count struct {
	Files int64
	Bytes int64
}

// BatchSummary is where a batch's jobs stand.
type BatchSummary struct {
	Name string
	// Tenant owns the batch.
	Tenant string
	// Target and Params are the batch object's; empty for a label.
	Target string
	Params map[string]string
	// ByStatus has every status, zero or not.
	ByStatus map[Status]Count
	Total    Count
	// Pending are the jobs not yet final (QUEUED, RUNNING, RETRYING).
	Pending Count
	// Final are the jobs SUCCESS, FAILED, CANCELED or SUPERSEDED.
	Final Count
	// StartedAt is when the batch object was created or, for a label, its
	// first job was; UpdatedAt is the last change of any of its jobs.
	StartedAt *time.Time
	UpdatedAt *time.Time
	// FilesPerSecond and BytesPerSecond are how fast jobs became final
	// over the last few minutes.
	FilesPerSecond float64
	BytesPerSecond float64
	// ETASeconds estimates the time until every job is final at that
	// rate; nil when nothing is pending or nothing finished lately.
	ETASeconds *float64
}

// Done reports whether every job of the batch is final.
func (b BatchSummary) Done() bool { return b.Pending.Files == 0 }

// rateWindow is how far back the throughput looks; recentBuckets is how
// long compaction keeps per-minute counts. Compaction waits for more than
// compactAbove rows, so that a summary read twice a second does not
// rewrite the same few rows each time.
const (
	rateWindow    = 5 * time.Minute
	recentBuckets = 10 * time.Minute
	compactAbove  = 100
)

// CompactBatchCounts folds the count deltas of batch into one row per
// status and minute for the last minutes and one per status and ten
// minutes before: the batch's throughput over its life (BatchThroughput)
// for a few rows an hour. It
// takes only rows no other compaction holds, so concurrent readers never
// wait on each other.
func (s *Store) CompactBatchCounts(ctx context.Context, tenant, batch string) error {
	_, err := s.db.Exec(ctx, `
		WITH gone AS (
			DELETE FROM batch_counts WHERE ctid IN (
				SELECT ctid FROM batch_counts WHERE tenant = $4 AND batch = $1 FOR UPDATE SKIP LOCKED)
				AND (SELECT count(*) FROM batch_counts WHERE tenant = $4 AND batch = $1) > $3
			RETURNING status, bucket, files, bytes, first_at, last_at
		), folded AS (
			SELECT status, CASE WHEN bucket >= now() - $2 * interval '1 millisecond' THEN bucket
				ELSE date_bin('10 minutes', bucket, timestamptz '2000-01-01') END AS b,
				sum(files) AS files, sum(bytes) AS bytes,
				min(first_at) AS first_at, max(last_at) AS last_at
			FROM gone GROUP BY 1, 2
		)
		INSERT INTO batch_counts (tenant, batch, status, bucket, files, bytes, first_at, last_at)
		SELECT $4, $1, status, b, files, bytes, first_at, last_at FROM folded`,
		batch, recentBuckets.Milliseconds(), compactAbove, tenant)
	if err != nil {
		return fmt.Errorf("compact counts of batch %q: %w", batch, err)
	}
	return nil
}

// BatchSummary returns the counts of batch, or ErrBatchNotFound when there
// is neither a batch object nor a job of that name. Its cost does not
// depend on the number of jobs: it reads the folded counts.
func (s *Store) BatchSummary(ctx context.Context, tenant, name string) (BatchSummary, error) {
	if err := s.CompactBatchCounts(ctx, tenant, name); err != nil {
		return BatchSummary{}, err
	}
	sum := BatchSummary{Name: name, Tenant: tenant, ByStatus: map[Status]Count{}}
	for _, st := range Statuses {
		sum.ByStatus[st] = Count{}
	}
	b, err := s.Batch(ctx, tenant, name)
	found := err == nil
	switch {
	case err == nil:
		sum.Target, sum.Params, sum.StartedAt = b.Target, b.Params, &b.CreatedAt
	case !errors.Is(err, ErrBatchNotFound):
		return BatchSummary{}, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT status, sum(files), sum(bytes), min(first_at), max(last_at),
			coalesce(sum(files) FILTER (WHERE bucket >= now() - $2 * interval '1 millisecond' AND files > 0), 0),
			coalesce(sum(bytes) FILTER (WHERE bucket >= now() - $2 * interval '1 millisecond' AND files > 0), 0),
			now()
		FROM batch_counts WHERE tenant = $3 AND batch = $1 GROUP BY status`, name, rateWindow.Milliseconds(), tenant)
	if err != nil {
		return BatchSummary{}, fmt.Errorf("summary of batch %q: %w", name, err)
	}
	defer rows.Close()
	var recent Count
	var now time.Time
	for rows.Next() {
		var st Status
		var c, r Count
		var first, last time.Time
		if err := rows.Scan(&st, &c.Files, &c.Bytes, &first, &last, &r.Files, &r.Bytes, &now); err != nil {
			return BatchSummary{}, fmt.Errorf("summary of batch %q: %w", name, err)
		}
		found = true
		sum.ByStatus[st] = c
		if sum.StartedAt == nil || first.Before(*sum.StartedAt) {
			sum.StartedAt = &first
		}
		if sum.UpdatedAt == nil || last.After(*sum.UpdatedAt) {
			sum.UpdatedAt = &last
		}
		if st.Final() {
			recent.Files += r.Files
			recent.Bytes += r.Bytes
		}
	}
	if err := rows.Err(); err != nil {
		return BatchSummary{}, fmt.Errorf("summary of batch %q: %w", name, err)
	}
	if !found {
		return BatchSummary{}, fmt.Errorf("batch %q: %w", name, ErrBatchNotFound)
	}
	for st, c := range sum.ByStatus {
		sum.Total.Files += c.Files
		sum.Total.Bytes += c.Bytes
		if st.Final() {
			sum.Final.Files += c.Files
			sum.Final.Bytes += c.Bytes
		} else {
			sum.Pending.Files += c.Files
			sum.Pending.Bytes += c.Bytes
		}
	}
	sum.rate(recent, now)
	return sum, nil
}

// rate sets the throughput from the jobs that became final in the rate
// window, and the time left from it.
func (b *BatchSummary) rate(recent Count, now time.Time) {
	if b.StartedAt == nil || now.IsZero() {
		return
	}
	// Buckets are whole minutes: the window starts at the oldest bucket
	// it counts, or when the batch started if that is later.
	from := now.Add(-rateWindow).Truncate(time.Minute)
	if b.StartedAt.After(from) {
		from = *b.StartedAt
	}
	secs := now.Sub(from).Seconds()
	if secs < 1 {
		secs = 1
	}
	b.FilesPerSecond = float64(recent.Files) / secs
	b.BytesPerSecond = float64(recent.Bytes) / secs
	if b.Pending.Files > 0 && b.FilesPerSecond > 0 {
		eta := float64(b.Pending.Files) / b.FilesPerSecond
		b.ETASeconds = &eta
	}
}

// BatchPage is a page of BatchSummaries.
type BatchPage struct {
	Batches []BatchSummary
	// NextCursor is the name to pass as cursor for the next page, "" on
	// the last.
	NextCursor string
}

// ListBatches returns the summaries of batches (objects and labels) named
// after cursor, by name, limit at a time (1-100, default 50).
func (s *Store) ListBatches(ctx context.Context, scope Scope, cursor string, limit int) (BatchPage, error) {
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	// The cursor is "tenant/name" of the last batch listed: neither a
	// tenant nor a batch name holds a slash.
	afterTenant, afterName, _ := strings.Cut(cursor, "/")
	args := []any{afterTenant, afterName, limit + 1}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	in := scope.sql("tenant", arg)
	rows, err := s.db.Query(ctx, `
		SELECT tenant, name FROM (
			SELECT tenant, name FROM batches WHERE `+in+` AND (tenant, name) > ($1, $2)
			UNION
			SELECT DISTINCT tenant, batch FROM batch_counts WHERE `+in+` AND (tenant, batch) > ($1, $2)
		) n ORDER BY tenant, name LIMIT $3`, args...)
	if err != nil {
		return BatchPage{}, fmt.Errorf("list batches: %w", err)
	}
	type ref struct{ tenant, name string }
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ref, error) {
		var b ref
		err := r.Scan(&b.tenant, &b.name)
		return b, err
	})
	if err != nil {
		return BatchPage{}, fmt.Errorf("list batches: %w", err)
	}
	page := BatchPage{Batches: []BatchSummary{}}
	if len(refs) > limit {
		refs = refs[:limit]
		last := refs[len(refs)-1]
		page.NextCursor = last.tenant + "/" + last.name
	}
	for _, b := range refs {
		sum, err := s.BatchSummary(ctx, b.tenant, b.name)
		if errors.Is(err, ErrBatchNotFound) {
			continue
		}
		if err != nil {
			return BatchPage{}, err
		}
		page.Batches = append(page.Batches, sum)
	}
	return page, nil
}

// ReportRow is one file of a batch report.
type ReportRow struct {
	// Path is the path the client gave for the file; the file name when it
	// gave none.
	Path       string
	JobID      string
	Status     Status
	Attempts   int
	RemoteID   string
	SHA256     string
	Size       int64
	LastError  string
	FinishedAt *time.Time
}

// reportPage is how many rows Report and BatchKeys read at a time. Each
// page is read whole and its connection given back before fn sees a row:
// a client that reads slowly (or stops) holds no database connection.
const reportPage = 1000

// Report calls fn with each job of batch, newest first. With status set,
// only jobs in that status are reported. Rows are read in pages by job id
// (the batch index's order, so nothing is sorted), and each job is
// reported once, with its state when its page was read; jobs created
// after the report began are not in it. fn's error stops the report and
// is returned.
func (s *Store) Report(ctx context.Context, tenant, batch string, status Status, fn func(ReportRow) error) error {
	q := reportSQL(status != "")
	args := []any{batch, tenant, maxUUID, reportPage}
	if status != "" {
		args = append(args, string(status))
	}
	for {
		rows, err := s.db.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("report of batch %q: %w", batch, err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReportRow, error) {
			var r ReportRow
			err := row.Scan(&r.Path, &r.JobID, &r.Status, &r.Attempts, &r.RemoteID, &r.SHA256, &r.Size, &r.LastError, &r.FinishedAt)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("report of batch %q: %w", batch, err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < reportPage {
			return nil
		}
		args[2] = page[len(page)-1].JobID
	}
}

// batchKeysSQL pages by jobs.id, not the id::text output column (see
// publishedBeforeSQL).
const batchKeysSQL = `SELECT id::text, idempotency_key FROM jobs
	WHERE tenant = $2 AND batch = $1 AND id < $3::uuid AND idempotency_key IS NOT NULL
	ORDER BY jobs.id DESC LIMIT $4`

// reportSQL is one page of Report, with or without a status filter. It
// pages by jobs.id, not the id::text output column (see publishedBeforeSQL).
func reportSQL(byStatus bool) string {
	q := `SELECT coalesce(client_path, filename), id::text, status, attempts, coalesce(remote_id, ''),
			sha256, size, coalesce(last_error, ''), finished_at
		FROM jobs WHERE tenant = $2 AND batch = $1 AND id < $3::uuid`
	if byStatus {
		q += ` AND status = $5`
	}
	return q + ` ORDER BY jobs.id DESC LIMIT $4`
}

// maxUUID is above every job id: the cursor of a first page.
const maxUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// BatchKeys calls fn with the idempotency key of each job of batch that has
// one: what a resumed push needs to skip the files already accepted. Keys
// are read in pages, as Report's rows are.
func (s *Store) BatchKeys(ctx context.Context, tenant, batch string, fn func(key string) error) error {
	after := maxUUID
	for {
		rows, err := s.db.Query(ctx, batchKeysSQL, batch, tenant, after, reportPage)
		if err != nil {
			return fmt.Errorf("keys of batch %q: %w", batch, err)
		}
		type idKey struct{ id, key string }
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (idKey, error) {
			var k idKey
			err := row.Scan(&k.id, &k.key)
			return k, err
		})
		if err != nil {
			return fmt.Errorf("keys of batch %q: %w", batch, err)
		}
		for _, k := range page {
			if err := fn(k.key); err != nil {
				return err
			}
		}
		if len(page) < reportPage {
			return nil
		}
		after = page[len(page)-1].id
	}
}
