package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Documents with versions (issue 21, migration 012). A job may name a
// document: one logical file at one target, named by the client's key
// within (tenant, target). Each such job is a version of it, recorded in
// the same transaction as the job with the document's row locked, so that
// versions are numbered in the order they were accepted:
//
//   - the same content as the latest version, when that version is
//     delivered or on its way, records nothing (RecordedUnchanged);
//   - the same content as a latest version that FAILED or was CANCELED
//     queues that version again (RecordedRequeued);
//   - anything else is version n+1 (RecordedNew), and every older version
//     that has not started (QUEUED, RETRYING) becomes SUPERSEDED, unless
//     an attempt of it may have reached the target (mayHaveLanded: cut
//     short by a worker's death or shutdown, or left without an answer):
//     that one goes out again first, so that SUPERSEDED stays "never
//     delivered".
//
// Claim refuses a version while an older one of its document waits or runs
// (ClaimError.Blocked), so versions go out one at a time, in order, across
// every worker; Finish writes what the connector reported of the document
// (Finish.Remote) and its current version.

// Ops of a job.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Document states.
const (
	DocumentActive  = "active"
	DocumentDeleted = "deleted"
)

// Recorded says what recording did with an accepted file or delete.
type Recorded int

// What recording did.
const (
	// RecordedNew: a new job (a new version, for a document).
	RecordedNew Recorded = iota
	// RecordedUnchanged: the document's latest version has this content
	// and is delivered or on its way; nothing was recorded.
	RecordedUnchanged
	// RecordedRequeued: the document's latest version has this content
	// and had failed (or was canceled); it was queued again.
	RecordedRequeued
)

// ErrDocumentNotFound means no document in scope has that id or key.
var ErrDocumentNotFound = errors.New("document not found")

// Document is one logical file at one target.
type Document struct {
	ID     string
	Tenant string
	Target string
	Key    string
	State  string
	// Remote is what the connector reported of the document at the target.
	Remote map[string]string
	// Versions is the number of the latest version accepted.
	Versions  int
	LatestJob string
	// Current* are the latest version delivered (CurrentVersion 0: none).
	CurrentVersion int
	CurrentSHA256  string
	CurrentSize    int64
	CurrentJob     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Version is one version of a document: one of its jobs.
type Version struct {
	Version     int
	Job         string
	Op          string
	Status      Status
	SHA256      string
	Size        int64
	AcceptedAt  time.Time
	DeliveredAt *time.Time
	// RemoteID is the target's id for the version, when it gave one.
	RemoteID string
}

const documentColumns = `id::text, tenant, target, key, state, remote, versions, coalesce(latest_job::text, ''),
	current_version, coalesce(current_sha256, ''), coalesce(current_size, 0), coalesce(current_job::text, ''),
	created_at, updated_at`

func scanDocument(row pgx.Row) (Document, error) {
	var d Document
	err := row.Scan(&d.ID, &d.Tenant, &d.Target, &d.Key, &d.State, &d.Remote, &d.Versions, &d.LatestJob,
		&d.CurrentVersion, &d.CurrentSHA256, &d.CurrentSize, &d.CurrentJob, &d.CreatedAt, &d.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Document{}, ErrDocumentNotFound
	}
	if d.Remote == nil {
		d.Remote = map[string]string{}
	}
	return d, err
}

// lockedDoc is a document's row, locked by the transaction that read it.
type lockedDoc struct {
	id        string
	versions  int
	latestJob string
}

// lockDocument creates the document of (tenant, target, key) if it is new,
// and locks its row until the end of tx.
func lockDocument(ctx context.Context, tx pgx.Tx, tenant, target, key string) (lockedDoc, error) {
	var d lockedDoc
	// DO UPDATE (of nothing) locks the existing row, as FOR UPDATE would.
	err := tx.QueryRow(ctx, `
		INSERT INTO documents (id, tenant, target, key) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, target, key) DO UPDATE SET versions = documents.versions
		RETURNING id::text, versions, coalesce(latest_job::text, '')`,
		uuid.Must(uuid.NewV7()).String(), tenant, target, key).Scan(&d.id, &d.versions, &d.latestJob)
	if err != nil {
		return lockedDoc{}, fmt.Errorf("lock document %q: %w", key, err)
	}
	return d, nil
}

// sameContent returns the document's latest version when it holds the
// content sha256: unchanged when it is delivered or on its way, queued
// again when it had failed or was canceled. ok is false otherwise.
func sameContent(ctx context.Context, tx pgx.Tx, d lockedDoc, sha256 string) (job Job, ok bool, err error) {
	if d.latestJob == "" || sha256 == "" {
		return Job{}, false, nil
	}
	job, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE id = $1 AND op = 'put' AND sha256 = $2 AND status <> 'SUPERSEDED'`, d.latestJob, sha256))
	if errors.Is(err, ErrNotFound) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("latest version of document %s: %w", d.id, err)
	}
	if job.Status != StatusFailed && job.Status != StatusCanceled {
		job.Recorded = RecordedUnchanged
		return job, true, nil
	}
	job, err = scanJob(tx.QueryRow(ctx, `UPDATE jobs SET status = 'QUEUED', attempts = 0, next_attempt_at = now(),
		finished_at = NULL, enqueued_at = NULL, updated_at = now() WHERE id = $1 RETURNING `+jobColumns, job.ID))
	if err != nil {
		return Job{}, false, fmt.Errorf("queue again version of document %s: %w", d.id, err)
	}
	job.Recorded = RecordedRequeued
	return job, true, nil
}

const insertVersionSQL = `
	INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key,
		params, status, max_attempts, idempotency_key, api_key_id, client_path, tenant, trace_parent,
		document_id, version, op)
	VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8, $9, 'QUEUED', $10, nullif($11, ''), nullif($12, 0), nullif($13, ''), $14,
		nullif($15, ''), $16, $17, $18)
	RETURNING ` + jobColumns

// insertVersion records the job of args (insertArgs) as the next version
// of d, op OpPut or OpDelete: the versions that have not started are
// superseded by it.
func insertVersion(ctx context.Context, tx pgx.Tx, d lockedDoc, args []any, op string) (Job, error) {
	v := d.versions + 1
	b := &pgx.Batch{}
	b.Queue(`UPDATE jobs SET status = 'SUPERSEDED', finished_at = now(), updated_at = now()
		WHERE document_id = $1 AND status IN ('QUEUED', 'RETRYING') AND NOT `+mayHaveLanded, d.id)
	b.Queue(insertVersionSQL, append(args, d.id, v, op)...)
	b.Queue(`UPDATE documents SET versions = $2, latest_job = $3, updated_at = now() WHERE id = $1`, d.id, v, args[0])
	res := tx.SendBatch(ctx, b)
	defer func() { _ = res.Close() }()
	if _, err := res.Exec(); err != nil {
		return Job{}, fmt.Errorf("supersede versions of document %s: %w", d.id, err)
	}
	job, err := scanJob(res.QueryRow())
	if err != nil {
		return Job{}, fmt.Errorf("record version %d of document %s: %w", v, d.id, err)
	}
	if _, err := res.Exec(); err != nil {
		return Job{}, fmt.Errorf("record version %d of document %s: %w", v, d.id, err)
	}
	if err := res.Close(); err != nil {
		return Job{}, fmt.Errorf("record version %d of document %s: %w", v, d.id, err)
	}
	return job, nil
}

// recordVersion records the i-th job of req, which names a document, in
// tx: a new version, or the latest one when it holds the same content.
// args[13] is the tenant (insertArgs).
func recordVersion(ctx context.Context, tx pgx.Tx, req Request, i int) (Job, error) {
	args := insertArgs(req, i)
	n := req.Jobs[i]
	d, err := lockDocument(ctx, tx, args[13].(string), n.Target, n.DocumentKey)
	if err != nil {
		return Job{}, err
	}
	if job, ok, err := sameContent(ctx, tx, d, n.SHA256); err != nil || ok {
		return job, err
	}
	return insertVersion(ctx, tx, d, args, OpPut)
}

// SameVersion answers an upload that declared its content's SHA-256
// before sending it: when the latest version of the document (tenant,
// target, key) holds that content, it returns that version as RecordRequest
// would (unchanged, or queued again when it had failed), and the bytes need
// not be read. It returns ErrNotFound when they must be.
func (s *Store) SameVersion(ctx context.Context, tenant, target, key, sha256 string) (Job, error) {
	// One read answers the common case (unchanged, delivered or on its
	// way): nothing changes, so nothing is locked.
	job, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE id = (SELECT latest_job FROM documents WHERE tenant = $1 AND target = $2 AND key = $3)
			AND op = 'put' AND sha256 = $4 AND status <> 'SUPERSEDED'`, tenant, target, key, sha256))
	if err != nil {
		return Job{}, fmt.Errorf("same version of %q: %w", key, err)
	}
	if job.Status != StatusFailed && job.Status != StatusCanceled {
		job.Recorded = RecordedUnchanged
		return job, nil
	}
	return s.requeueSame(ctx, tenant, target, key, sha256)
}

// requeueSame is SameVersion for a latest version that failed: with the
// document locked, it is queued again if it still holds the content.
func (s *Store) requeueSame(ctx context.Context, tenant, target, key, sha256 string) (Job, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Job{}, fmt.Errorf("same version: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var d lockedDoc
	err = tx.QueryRow(ctx, `SELECT id::text, versions, coalesce(latest_job::text, '') FROM documents
		WHERE tenant = $1 AND target = $2 AND key = $3 FOR UPDATE`, tenant, target, key).Scan(&d.id, &d.versions, &d.latestJob)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("same version: %w", err)
	}
	job, ok, err := sameContent(ctx, tx, d, sha256)
	if err != nil {
		return Job{}, err
	}
	if !ok {
		return Job{}, ErrNotFound
	}
	if err := tx.Commit(ctx); err != nil {
		return Job{}, fmt.Errorf("same version: commit: %w", err)
	}
	return job, nil
}

// DeleteRequest names a document to delete: by ID, or by Target and Key
// within Tenant.
type DeleteRequest struct {
	Scope      Scope
	Tenant     string
	Target     string
	Key        string
	DocumentID string
	// MaxAttempts of the delete job; its target's.
	MaxAttempts int
	APIKeyID    int64
	// TraceParent is the request's trace (Job.TraceParent).
	TraceParent string
}

// RecordDelete records the delete of a document as its next version (op
// delete, no file), superseding the versions that have not started. A
// document already deleted, or whose delete is on its way, gets no second
// one: its delete job is returned with RecordedUnchanged. It returns
// ErrDocumentNotFound for a document out of scope.
func (s *Store) RecordDelete(ctx context.Context, r DeleteRequest) (Job, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Job{}, fmt.Errorf("record delete: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	doc, err := s.lockForDelete(ctx, tx, r)
	if err != nil {
		return Job{}, err
	}
	d := lockedDoc{id: doc.ID, versions: doc.Versions, latestJob: doc.LatestJob}
	if d.latestJob != "" {
		latest, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, d.latestJob))
		if err != nil {
			return Job{}, fmt.Errorf("record delete: %w", err)
		}
		if latest.Op == OpDelete && latest.Status != StatusFailed && latest.Status != StatusCanceled {
			latest.Recorded = RecordedUnchanged
			return latest, nil
		}
	}
	n := New{ID: uuid.Must(uuid.NewV7()).String(), Tenant: doc.Tenant, Target: doc.Target, Filename: doc.Key,
		ContentType: "", MaxAttempts: r.MaxAttempts, APIKeyID: r.APIKeyID, TraceParent: r.TraceParent}
	job, err := insertVersion(ctx, tx, d, insertArgs(Request{Jobs: []New{n}}, 0), OpDelete)
	if err != nil {
		return Job{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Job{}, fmt.Errorf("record delete: commit: %w", err)
	}
	return job, nil
}

// lockForDelete reads and locks the document a DeleteRequest names.
func (s *Store) lockForDelete(ctx context.Context, tx pgx.Tx, r DeleteRequest) (Document, error) {
	args := []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var where string
	if r.DocumentID != "" {
		if !validID(r.DocumentID) {
			return Document{}, ErrDocumentNotFound
		}
		where = "id = " + arg(r.DocumentID)
	} else {
		where = "tenant = " + arg(r.Tenant) + " AND target = " + arg(r.Target) + " AND key = " + arg(r.Key)
	}
	doc, err := scanDocument(tx.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE `+where+` AND `+r.Scope.sql("tenant", arg)+` FOR UPDATE`, args...))
	if err != nil {
		return Document{}, fmt.Errorf("record delete: %w", err)
	}
	return doc, nil
}
