package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrKeyReused means an Idempotency-Key was sent again with a request that
// is not the one it was first sent with.
var ErrKeyReused = errors.New("idempotency key already used for another request")

// ErrOutcomeUnknown means the commit of a request's jobs failed in a way
// that leaves unknown whether it happened: the caller must not remove the
// request's files (the orphan sweep does, if no job was recorded). A
// failure before the statements reached Postgres (no connection could be
// had) is not this: nothing was recorded, and the caller may remove them.
var ErrOutcomeUnknown = errors.New("outcome of the commit unknown")

// Request is one upload request: its jobs, recorded together or not at all.
type Request struct {
	// IdempotencyKey is the client's key for the request, or "".
	IdempotencyKey string
	// Fingerprint sums up what the request asked for; a repeat of the key
	// with another fingerprint is refused with ErrKeyReused.
	Fingerprint string
	// Tenant owns the request's jobs; TenantDefault when empty.
	Tenant string
	// Batch and APIKeyID scope the key: within a batch a key is the
	// batch's, whoever sends it; outside one, it is the API key's.
	Batch    string
	APIKeyID int64
	// Jobs are the request's files, in the order they came.
	Jobs []New
	// Markers are the upload markers (BeginUpload) of the request's
	// files, removed with the jobs' record.
	Markers []string
}

func (r Request) scope() string {
	if r.Batch != "" {
		// Batch names are per tenant; neither name holds a slash.
		return "batch:" + cmp.Or(r.Tenant, TenantDefault) + "/" + r.Batch
	}
	return "key:" + strconv.FormatInt(r.APIKeyID, 10)
}

// ErrKeyReserved means an idempotency key holds the character ferry
// derives the keys of a request's later files with (jobKey): a client
// choosing "X#1" would name the second file of request "X".
var ErrKeyReserved = errors.New(`idempotency key holds "#", which ferry reserves for the keys of a request's files`)

// CheckIdempotencyKey returns ErrKeyReserved for a key a client may not
// choose, nil otherwise.
func CheckIdempotencyKey(key string) error {
	if strings.ContainsRune(key, '#') {
		return fmt.Errorf("key %q: %w", key, ErrKeyReserved)
	}
	return nil
}

// jobKey is the idempotency key of the i-th job of a request with key: the
// first job has the request's key, so that a file pushed alone is found by
// it (BatchKeys), the others key#i. No client key holds "#"
// (CheckIdempotencyKey), so no client key is another request's job key.
func jobKey(key string, i int) string {
	if key == "" || i == 0 {
		return key
	}
	return key + "#" + strconv.Itoa(i)
}

// RecordRequest records every job of req in one transaction, and with
// them the end of their uploads in progress (req.Markers go). With an
// idempotency key already used in its scope, it records nothing and
// returns the jobs of that first request, in order, with created=false;
// ErrKeyReused if the first request was a different one, or if the key
// names a request of the same API key in another scope (a batch, or none).
//
// A request without a key is one round trip: its statements go as one
// pipelined batch, which Postgres runs as one implicit transaction. A
// keyed request needs a transaction of its own, since whether its jobs are
// written depends on the answer to its first statement.
func (s *Store) RecordRequest(ctx context.Context, req Request) (out []Job, created bool, err error) {
	if len(req.Jobs) == 0 {
		return nil, false, errors.New("record request: no job")
	}
	if err := CheckIdempotencyKey(req.IdempotencyKey); err != nil {
		return nil, false, fmt.Errorf("record request: %w", err)
	}
	if req.IdempotencyKey == "" && !req.hasDocuments() {
		out, err := s.insertJobs(ctx, s.db, req, true)
		if err != nil {
			return nil, false, err
		}
		return out, true, nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("record request: %w", err)
	}
	defer func() {
		// After a commit this is a no-op; otherwise it ends the transaction
		// even if ctx is done, within its own deadline.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if req.IdempotencyKey != "" {
		earlier, err := s.claimKey(ctx, tx, req)
		if err != nil || earlier {
			_ = tx.Rollback(ctx)
			if err != nil {
				return nil, false, err
			}
			return s.earlierRequest(ctx, req)
		}
	}
	if req.hasDocuments() {
		out, err = s.insertVersions(ctx, tx, req)
	} else {
		out, err = s.insertJobs(ctx, tx, req, false)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgerrcode.UniqueViolation && req.IdempotencyKey != "" {
		// A job of an earlier request holds the key: one recorded before
		// requests were, or one of the same API key in another scope.
		_ = tx.Rollback(ctx)
		return s.earlierRequest(ctx, req)
	}
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		if notSent(err) {
			return nil, false, fmt.Errorf("record request: commit: %w", err)
		}
		return nil, false, fmt.Errorf("record request: commit: %w: %w", ErrOutcomeUnknown, err)
	}
	return out, true, nil
}

// hasDocuments reports whether a job of req names a document.
func (r Request) hasDocuments() bool {
	for _, n := range r.Jobs {
		if n.DocumentKey != "" {
			return true
		}
	}
	return false
}

// claimKey records req's idempotency key in tx; earlier says an earlier
// request holds it.
func (s *Store) claimKey(ctx context.Context, tx pgx.Tx, req Request) (earlier bool, err error) {
	ids := make([]string, len(req.Jobs))
	for i, n := range req.Jobs {
		ids[i] = n.ID
	}
	tag, err := tx.Exec(ctx, `INSERT INTO upload_requests (scope, idempotency_key, fingerprint, job_ids)
		VALUES ($1, $2, $3, $4::uuid[]) ON CONFLICT DO NOTHING`, req.scope(), req.IdempotencyKey, req.Fingerprint, ids)
	if err != nil {
		return false, fmt.Errorf("record request: %w", err)
	}
	return tag.RowsAffected() == 0, nil
}

// insertVersions records the jobs of a request that names documents, in
// tx, one by one (each document's row locked), and removes its markers.
// A file whose document holds its content already answers with that
// version's job (Job.Recorded), so the key's request row is rewritten
// with the jobs answered.
func (s *Store) insertVersions(ctx context.Context, tx pgx.Tx, req Request) ([]Job, error) {
	out := make([]Job, 0, len(req.Jobs))
	ids := make([]string, 0, len(req.Jobs))
	for i, n := range req.Jobs {
		var j Job
		var err error
		if n.DocumentKey != "" {
			j, err = recordVersion(ctx, tx, req, i)
		} else {
			j, err = scanJob(tx.QueryRow(ctx, insertJobSQL, insertArgs(req, i)...))
		}
		if err != nil {
			return nil, fmt.Errorf("record request: %w", err)
		}
		out = append(out, j)
		ids = append(ids, j.ID)
	}
	if len(req.Markers) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM uploads_in_progress WHERE object_key = ANY($1)`, req.Markers); err != nil {
			return nil, fmt.Errorf("record request: %w", err)
		}
	}
	if req.IdempotencyKey != "" {
		if _, err := tx.Exec(ctx, `UPDATE upload_requests SET job_ids = $3::uuid[] WHERE scope = $1 AND idempotency_key = $2`,
			req.scope(), req.IdempotencyKey, ids); err != nil {
			return nil, fmt.Errorf("record request: %w", err)
		}
	}
	return out, nil
}

const insertJobSQL = `
	INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key,
		params, status, max_attempts, idempotency_key, api_key_id, client_path, tenant, trace_parent)
	VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8, $9, 'QUEUED', $10, nullif($11, ''), nullif($12, 0), nullif($13, ''), $14,
		nullif($15, ''))
	RETURNING ` + jobColumns

// insertArgs are the arguments of insertJobSQL for the i-th job of req.
func insertArgs(req Request, i int) []any {
	n := req.Jobs[i].withDefaults()
	if req.Tenant != "" {
		n.Tenant = req.Tenant
	}
	return []any{n.ID, n.Target, n.Batch, n.Filename, n.ContentType, n.Size, n.SHA256, n.ObjectKey,
		n.Params, n.MaxAttempts, jobKey(req.IdempotencyKey, i), n.APIKeyID, n.ClientPath, n.Tenant, n.TraceParent}
}

// batchSender is a pool or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// insertJobs inserts the jobs of req, and removes its markers, in one
// batch. commits says the batch is its own (implicit) transaction: an
// error that is not Postgres's answer (the connection broke) then leaves
// the outcome unknown, unless the batch never reached Postgres.
func (s *Store) insertJobs(ctx context.Context, db batchSender, req Request, commits bool) ([]Job, error) {
	fail := func(err error) error {
		var pe *pgconn.PgError
		if commits && !errors.As(err, &pe) && !notSent(err) {
			return fmt.Errorf("record request: %w: %w", ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("record request: %w", err)
	}
	if commits && len(req.Jobs) == 1 && len(req.Markers) == 0 {
		// One statement (a small file, alone): it joins the other
		// callers' writes.
		j, err := s.combinedJob(ctx, insertJobSQL, insertArgs(req, 0)...)
		if err != nil {
			return nil, fail(err)
		}
		return []Job{j}, nil
	}
	b := &pgx.Batch{}
	for i := range req.Jobs {
		b.Queue(insertJobSQL, insertArgs(req, i)...)
	}
	if len(req.Markers) > 0 {
		b.Queue(`DELETE FROM uploads_in_progress WHERE object_key = ANY($1)`, req.Markers)
	}
	res := db.SendBatch(ctx, b)
	out := make([]Job, 0, len(req.Jobs))
	for range req.Jobs {
		j, err := scanJob(res.QueryRow())
		if err != nil {
			_ = res.Close()
			return nil, fail(err)
		}
		out = append(out, j)
	}
	if err := res.Close(); err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// earlierRequest answers a request whose key was used before.
func (s *Store) earlierRequest(ctx context.Context, req Request) ([]Job, bool, error) {
	fp, js, err := s.RequestByKey(ctx, req.Tenant, req.Batch, req.APIKeyID, req.IdempotencyKey)
	if errors.Is(err, ErrNotFound) {
		// Not in this scope: the job holding the key is another scope's.
		return nil, false, fmt.Errorf("key %q: %w", req.IdempotencyKey, ErrKeyReused)
	}
	if err != nil {
		return nil, false, err
	}
	if (fp != "" && fp != req.Fingerprint) || len(js) != len(req.Jobs) {
		return nil, false, fmt.Errorf("key %q: %w", req.IdempotencyKey, ErrKeyReused)
	}
	return js, false, nil
}

// RequestByKey returns the fingerprint and the jobs, in order, of the
// upload request that used key in its scope (see Request), or ErrNotFound.
// For a request recorded before requests were (its jobs hold the keys),
// the fingerprint is "". A key that names a request of the same API key
// in another scope is ErrKeyReused: a key names one request.
func (s *Store) RequestByKey(ctx context.Context, tenant, batch string, apiKeyID int64, key string) (string, []Job, error) {
	if err := CheckIdempotencyKey(key); err != nil {
		return "", nil, fmt.Errorf("request by key: %w", err)
	}
	req := Request{Tenant: tenant, Batch: batch, APIKeyID: apiKeyID, IdempotencyKey: key}
	var fp string
	var ids []string
	err := s.db.QueryRow(ctx, `SELECT fingerprint, job_ids::text[] FROM upload_requests
		WHERE scope = $1 AND idempotency_key = $2`, req.scope(), key).Scan(&fp, &ids)
	if err == nil {
		js, err := s.jobsInOrder(ctx, ids)
		return fp, js, err
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("request by key: %w", err)
	}
	js, err := s.legacyRequest(ctx, req)
	if err != nil {
		return "", nil, err
	}
	if len(js) == 0 {
		return "", nil, fmt.Errorf("request by key: %w", ErrNotFound)
	}
	return "", js, nil
}

// jobsInOrder returns the jobs of ids that exist, in the order of ids.
func (s *Store) jobsInOrder(ctx context.Context, ids []string) ([]Job, error) {
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("request by key: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("request by key: %w", err)
	}
	byID := make(map[string]Job, len(found))
	for _, j := range found {
		byID[j.ID] = j
	}
	js := make([]Job, 0, len(ids))
	for _, id := range ids {
		if j, ok := byID[id]; ok {
			js = append(js, j)
		}
	}
	return js, nil
}

// legacyRequest finds the jobs of a request with no row in upload_requests
// by the keys its jobs carry (key, key#1, key#2...), as requests recorded
// before the table were; none is no error. A job found so that is of
// another scope makes the key ErrKeyReused: the same API key used it in a
// batch and now outside it, or the other way round (its jobs' keys are
// unique per API key, whatever the batch).
func (s *Store) legacyRequest(ctx context.Context, req Request) ([]Job, error) {
	key := req.IdempotencyKey
	var js []Job
	for i := 0; ; i++ {
		var j Job
		var err error
		if req.Batch != "" {
			j, err = s.ByBatchKey(ctx, cmp.Or(req.Tenant, TenantDefault), req.Batch, jobKey(key, i))
		} else {
			j, err = s.ByIdempotencyKey(ctx, req.APIKeyID, jobKey(key, i))
		}
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		js = append(js, j)
	}
	if req.Batch != "" && len(js) == 0 {
		// Outside this batch, the API key may hold the key already: its
		// jobs' keys are unique per API key.
		j, err := s.ByIdempotencyKey(ctx, req.APIKeyID, key)
		switch {
		case err == nil:
			js = append(js, j)
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	if len(js) > 0 && (Request{Tenant: js[0].Tenant, Batch: js[0].Batch, APIKeyID: js[0].APIKeyID}).scope() != req.scope() {
		return nil, fmt.Errorf("key %q: %w", key, ErrKeyReused)
	}
	return js, nil
}

// BeginUpload records that the object under key is being received, before
// its first byte: the orphan sweep leaves it alone while the marker is
// alive (KeepUploading), and RecordRequest (Request.Markers) or EndUpload
// removes it.
func (s *Store) BeginUpload(ctx context.Context, key string) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO uploads_in_progress (object_key) VALUES ($1)
		ON CONFLICT (object_key) DO UPDATE SET alive_at = now()`, key); err != nil {
		return fmt.Errorf("begin upload %s: %w", key, err)
	}
	return nil
}

// KeepUploading renews the markers of uploads still being received.
func (s *Store) KeepUploading(ctx context.Context, keys ...string) error {
	if _, err := s.db.Exec(ctx, `UPDATE uploads_in_progress SET alive_at = now() WHERE object_key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("keep uploads alive: %w", err)
	}
	return nil
}

// EndUpload removes the markers of uploads refused (their objects are
// being removed).
func (s *Store) EndUpload(ctx context.Context, keys ...string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM uploads_in_progress WHERE object_key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("end uploads: %w", err)
	}
	return nil
}

// Uploading returns which of keys are objects of uploads still in progress:
// their marker was renewed less than alive ago. A marker older than that
// belongs to a request that died with its process; it is removed here.
func (s *Store) Uploading(ctx context.Context, keys []string, alive time.Duration) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT object_key, alive_at > now() - $2 * interval '1 millisecond'
		FROM uploads_in_progress WHERE object_key = ANY($1)`, keys, alive.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("uploads in progress: %w", err)
	}
	out := map[string]bool{}
	var dead []string
	for rows.Next() {
		var k string
		var live bool
		if err := rows.Scan(&k, &live); err != nil {
			rows.Close()
			return nil, fmt.Errorf("uploads in progress: %w", err)
		}
		if live {
			out[k] = true
		} else {
			dead = append(dead, k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("uploads in progress: %w", err)
	}
	if len(dead) > 0 {
		if err := s.EndUpload(ctx, dead...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeadUploads returns up to limit keys of uploads whose marker was last
// renewed more than alive ago: their request died with its process. The
// caller aborts what is left of them, then calls EndUpload.
func (s *Store) DeadUploads(ctx context.Context, alive time.Duration, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT object_key FROM uploads_in_progress
		WHERE alive_at < now() - $1 * interval '1 millisecond' ORDER BY alive_at LIMIT $2`, alive.Milliseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("dead uploads: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("dead uploads: %w", err)
	}
	return keys, nil
}
