// Package sessions keeps the dashboard's login sessions in Postgres, so
// that every API process sees every session: behind a round-robin proxy, a
// browser logged in through one process is logged in on all of them, and
// a logout or a revoked key ends the session on all of them at once.
//
// A session's token lives only in the browser's cookie; the table keeps a
// SHA-256 hash of it (a token has 256 random bits, so a fast hash is
// enough), the API key it speaks for, and when it was made, last seen and
// ends. Each key has at most Config.PerKey sessions: a new login drops the
// oldest session of the same key, never another key's.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// Defaults of Config.
const (
	TTLDefault    = 12 * time.Hour
	PerKeyDefault = 20
)

// ErrNotFound means the token names no live session: unknown, logged out,
// expired, or its key revoked or expired.
var ErrNotFound = errors.New("no such session")

// Config bounds sessions.
type Config struct {
	// TTL is how long a session lives without use; TTLDefault if zero.
	TTL time.Duration
	// PerKey bounds the sessions of one API key; PerKeyDefault if zero.
	PerKey int
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = TTLDefault
	}
	if c.PerKey <= 0 {
		c.PerKey = PerKeyDefault
	}
	return c
}

// Session is a live session.
type Session struct {
	// Key is who the session speaks for, as the key is now.
	Key apikeys.Identity
	// CSRF is the token its forms carry: derived from the session's
	// token, so every process computes the same one and none stores it.
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Store keeps sessions in a migrated database (migration 010).
type Store struct {
	db  *pgxpool.Pool
	cfg Config

	mu    sync.Mutex
	swept time.Time
}

// NewStore returns a store over db.
func NewStore(db *pgxpool.Pool, cfg Config) *Store {
	return &Store{db: db, cfg: cfg.WithDefaults()}
}

// TTL is how long a session lives without use.
func (s *Store) TTL() time.Duration { return s.cfg.TTL }

func hashOf(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// csrfOf derives a session's CSRF token from its token: knowing one does
// not give the other.
func csrfOf(token string) string {
	sum := sha256.Sum256([]byte("ferry dashboard csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RandomToken returns 256 random bits, URL-safe.
func RandomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// touchEvery is how stale a session's last-seen time may get: a session
// in use is written at most this often, not on every page refresh.
const touchEvery = time.Minute

// Create starts a session for the key keyID and returns its token. The
// key's oldest sessions go when it has PerKey already; other keys'
// sessions are never touched.
func (s *Store) Create(ctx context.Context, keyID int64) (string, error) {
	tok := RandomToken()
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The key's logins take turns, so that two at once cannot both find
	// room. The row lock also waits for a revocation in progress.
	var live bool
	err = tx.QueryRow(ctx, `SELECT revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
		FROM api_keys WHERE id = $1 FOR UPDATE`, keyID).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return "", fmt.Errorf("create session: %w", apikeys.ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dashboard_sessions WHERE token_hash IN (
			SELECT token_hash FROM dashboard_sessions WHERE api_key_id = $1
			ORDER BY (expires_at > now()) DESC, created_at DESC OFFSET $2)`,
		keyID, s.cfg.PerKey-1); err != nil {
		return "", fmt.Errorf("create session: bound the key's sessions: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO dashboard_sessions (token_hash, api_key_id, expires_at)
		VALUES ($1, $2, now() + make_interval(secs => $3))`, hashOf(tok), keyID, s.cfg.TTL.Seconds()); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	s.sweep(ctx)
	return tok, nil
}

// Get returns the live session of token, with its key as it is now, and
// extends it. It returns ErrNotFound for a token that names none.
func (s *Store) Get(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 100 {
		return Session{}, ErrNotFound
	}
	var se Session
	var lastSeen time.Time
	err := s.db.QueryRow(ctx, `
		SELECT k.id, k.name, k.tenant, k.role, k.expires_at, s.created_at, s.expires_at, s.last_seen_at
		FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id
		WHERE s.token_hash = $1 AND s.expires_at > now()
		  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`, hashOf(token)).
		Scan(&se.Key.ID, &se.Key.Name, &se.Key.Tenant, &se.Key.Role, &se.Key.ExpiresAt, &se.CreatedAt, &se.ExpiresAt, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	se.CSRF = csrfOf(token)
	if time.Since(lastSeen) > touchEvery {
		// Best effort: a session that works must not fail because this
		// did; at worst it ends TTL after its last recorded use.
		_ = s.db.QueryRow(ctx, `UPDATE dashboard_sessions SET last_seen_at = now(), expires_at = now() + make_interval(secs => $2)
			WHERE token_hash = $1 RETURNING expires_at`, hashOf(token), s.cfg.TTL.Seconds()).Scan(&se.ExpiresAt)
	}
	return se, nil
}

// Delete ends the session of token (a logout), in every process at once.
func (s *Store) Delete(ctx context.Context, token string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM dashboard_sessions WHERE token_hash = $1`, hashOf(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// sweepEvery is how often a process deletes the sessions that ended.
const sweepEvery = time.Minute

// sweep deletes the sessions that ended, at most once per sweepEvery.
func (s *Store) sweep(ctx context.Context) {
	s.mu.Lock()
	due := time.Since(s.swept) > sweepEvery
	if due {
		s.swept = time.Now()
	}
	s.mu.Unlock()
	if due {
		_, _ = s.Expire(ctx) // best effort: ended sessions are never read
	}
}

// Expire deletes the sessions that ended; it returns how many went.
func (s *Store) Expire(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM dashboard_sessions WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
