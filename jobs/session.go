package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Upload sessions: one large file sent in numbered parts (issue 23). The
// session row holds the request, resolved and checked when it was created;
// parts are recorded as they arrive; completing it records its job (the id
// chosen at creation) in the same transaction that closes the session, so a
// session becomes exactly one job however often it is completed.

// Session states.
const (
	SessionOpen      = "open"
	SessionCompleted = "completed"
	SessionAborted   = "aborted"
)

// ErrSessionExpired means the session's time ran out: its parts are gone.
var ErrSessionExpired = errors.New("upload session expired")

// ErrSessionClosed means the session was completed or aborted: it takes no
// more parts.
var ErrSessionClosed = errors.New("upload session closed")

// Session is an upload session.
type Session struct {
	ID             string
	Tenant         string
	APIKeyID       int64
	IdempotencyKey string
	// Job is the job the session becomes: its Size, SHA256 ("" until
	// declared), ObjectKey and the request's fields.
	Job        New
	PartSize   int64
	Parts      int
	UploadID   string
	State      string
	BytesIn    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
	Received   []Part
	CompleteAt *time.Time
}

// Part is one part received.
type Part struct {
	N        int
	Size     int64
	SHA256   string
	ETag     string
	ChainIn  string
	ChainOut string
}

const sessionColumns = `id::text, tenant, coalesce(api_key_id, 0), coalesce(idempotency_key, ''),
	target, coalesce(batch, ''), filename, content_type, coalesce(client_path, ''), coalesce(document_key, ''), params, max_attempts, size, sha256,
	part_size, parts, job_id::text, object_key, s3_upload_id, state, bytes_received,
	created_at, updated_at, expires_at`

func scanSession(row pgx.Row) (Session, error) {
	var s Session
	err := row.Scan(&s.ID, &s.Tenant, &s.APIKeyID, &s.IdempotencyKey,
		&s.Job.Target, &s.Job.Batch, &s.Job.Filename, &s.Job.ContentType, &s.Job.ClientPath, &s.Job.DocumentKey, &s.Job.Params, &s.Job.MaxAttempts,
		&s.Job.Size, &s.Job.SHA256, &s.PartSize, &s.Parts, &s.Job.ID, &s.Job.ObjectKey, &s.UploadID,
		&s.State, &s.BytesIn, &s.CreatedAt, &s.UpdatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("read upload session: %w", err)
	}
	s.Job.Tenant, s.Job.APIKeyID = s.Tenant, s.APIKeyID
	return s, nil
}

// CreateSession records a new session, or, when its idempotency key was
// used by an open or completed session of the same API key, returns that
// one with created=false (the caller checks it asks for the same file).
func (s *Store) CreateSession(ctx context.Context, ss Session, ttl time.Duration) (Session, bool, error) {
	n := ss.Job.withDefaults()
	row := s.db.QueryRow(ctx, `
		INSERT INTO upload_sessions (id, tenant, api_key_id, idempotency_key, target, batch, filename,
			content_type, client_path, document_key, params, max_attempts, size, sha256, part_size, parts, job_id, object_key,
			s3_upload_id, expires_at)
		VALUES ($1, $2, nullif($3, 0), nullif($4, ''), $5, nullif($6, ''), $7, $8, nullif($9, ''), nullif($10, ''), $11, $12,
			$13, $14, $15, $16, $17, $18, $19, now() + $20 * interval '1 millisecond')
		ON CONFLICT DO NOTHING
		RETURNING `+sessionColumns,
		ss.ID, ss.Tenant, ss.APIKeyID, ss.IdempotencyKey, n.Target, n.Batch, n.Filename, n.ContentType,
		n.ClientPath, n.DocumentKey, n.Params, n.MaxAttempts, n.Size, n.SHA256, ss.PartSize, ss.Parts, n.ID, n.ObjectKey, ss.UploadID,
		ttl.Milliseconds())
	out, err := scanSession(row)
	if err == nil {
		return out, true, nil
	}
	if !errors.Is(err, ErrNotFound) || ss.IdempotencyKey == "" {
		return Session{}, false, fmt.Errorf("create upload session: %w", err)
	}
	out, err = scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM upload_sessions
		WHERE coalesce(api_key_id, 0) = $1 AND idempotency_key = $2 AND state <> 'aborted'`,
		ss.APIKeyID, ss.IdempotencyKey))
	if err != nil {
		return Session{}, false, fmt.Errorf("create upload session: the key's session: %w", err)
	}
	return out, false, nil
}

// GetSession returns a session of tenant ("" for any) with its parts.
func (s *Store) GetSession(ctx context.Context, tenant, id string) (Session, error) {
	if !validID(id) {
		return Session{}, ErrNotFound
	}
	ss, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM upload_sessions
		WHERE id = $1 AND ($2 = '' OR tenant = $2)`, id, tenant))
	if err != nil {
		return Session{}, err
	}
	rows, err := s.db.Query(ctx, `SELECT n, size, sha256, etag, chain_in, chain_out
		FROM upload_session_parts WHERE session_id = $1 ORDER BY n`, id)
	if err != nil {
		return Session{}, fmt.Errorf("read upload session parts: %w", err)
	}
	ss.Received, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Part, error) {
		var p Part
		err := r.Scan(&p.N, &p.Size, &p.SHA256, &p.ETag, &p.ChainIn, &p.ChainOut)
		return p, err
	})
	if err != nil {
		return Session{}, fmt.Errorf("read upload session parts: %w", err)
	}
	return ss, nil
}

// RecordPart records a part received (replacing an earlier one of its
// number), counts its bytes and extends the session's life by ttl. It
// returns ErrSessionClosed or ErrSessionExpired when the session took no
// part.
func (s *Store) RecordPart(ctx context.Context, id string, p Part, ttl time.Duration) error {
	var state string
	var expired bool
	err := s.db.QueryRow(ctx, `
		WITH ss AS (
			UPDATE upload_sessions SET bytes_received = bytes_received + $2, updated_at = now(),
				expires_at = greatest(expires_at, now() + $3 * interval '1 millisecond')
			WHERE id = $1 AND state = 'open' AND expires_at > now()
			RETURNING id),
		part AS (
			INSERT INTO upload_session_parts (session_id, n, size, sha256, etag, chain_in, chain_out)
			SELECT id, $4, $2, $5, $6, $7, $8 FROM ss
			ON CONFLICT (session_id, n) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
				etag = excluded.etag, chain_in = excluded.chain_in, chain_out = excluded.chain_out,
				received_at = now()
			RETURNING 1)
		SELECT state, expires_at <= now() FROM upload_sessions WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ss)`,
		id, p.Size, ttl.Milliseconds(), p.N, p.SHA256, p.ETag, p.ChainIn, p.ChainOut).Scan(&state, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // the update took it
	case err != nil:
		return fmt.Errorf("record part %d: %w", p.N, err)
	case state != SessionOpen:
		return ErrSessionClosed
	default:
		return ErrSessionExpired
	}
}

// CompleteSession records the session's job (n, its SHA-256 proven by the
// caller) and closes the session, in one transaction. A session already
// completed returns its job with created=false. A session that names a
// document records a version of it, as an upload does: when the document
// holds that content already, the job returned is that version's (not
// n.ID, whose file the caller then removes), created=false unless it was
// queued again.
func (s *Store) CompleteSession(ctx context.Context, id string, n New) (Job, bool, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Job{}, false, fmt.Errorf("complete upload session: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var state, jobID string
	err = tx.QueryRow(ctx, `SELECT state, job_id::text FROM upload_sessions WHERE id = $1 FOR UPDATE`, id).
		Scan(&state, &jobID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, ErrNotFound
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("complete upload session: %w", err)
	}
	switch state {
	case SessionCompleted:
		_ = tx.Rollback(ctx)
		j, err := s.Get(ctx, AllTenants(), jobID)
		return j, false, err
	case SessionAborted:
		return Job{}, false, ErrSessionClosed
	}
	out, err := s.insertVersions(ctx, tx, Request{Tenant: n.Tenant, Jobs: []New{n}})
	if err != nil {
		return Job{}, false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE upload_sessions SET state = 'completed', sha256 = $2, job_id = $3, updated_at = now()
		WHERE id = $1`, id, n.SHA256, out[0].ID); err != nil {
		return Job{}, false, fmt.Errorf("complete upload session: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Job{}, false, fmt.Errorf("complete upload session: commit: %w: %w", ErrOutcomeUnknown, err)
	}
	return out[0], out[0].ID == n.ID || out[0].Recorded == RecordedRequeued, nil
}

// AbortSession marks an open session aborted and returns it, for its
// multipart upload to be aborted; ErrSessionClosed if it was completed.
func (s *Store) AbortSession(ctx context.Context, tenant, id string) (Session, error) {
	if !validID(id) {
		return Session{}, ErrNotFound
	}
	ss, err := scanSession(s.db.QueryRow(ctx, `UPDATE upload_sessions SET state = 'aborted', updated_at = now()
		WHERE id = $1 AND ($2 = '' OR tenant = $2) AND state <> 'completed'
		RETURNING `+sessionColumns, id, tenant))
	if errors.Is(err, ErrNotFound) {
		if _, gerr := s.GetSession(ctx, tenant, id); gerr == nil {
			return Session{}, ErrSessionClosed
		}
	}
	return ss, err
}

// ExpiredSessions marks up to limit open sessions whose time ran out
// aborted and returns them, for the sweeper to abort their uploads.
func (s *Store) ExpiredSessions(ctx context.Context, limit int) ([]Session, error) {
	rows, err := s.db.Query(ctx, `UPDATE upload_sessions SET state = 'aborted', updated_at = now()
		WHERE id IN (SELECT id FROM upload_sessions WHERE state = 'open' AND expires_at <= now()
			ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING `+sessionColumns, limit)
	if err != nil {
		return nil, fmt.Errorf("expired upload sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expired upload sessions: %w", err)
	}
	return out, nil
}
