// Package apikeys creates, lists, revokes and checks the API keys that
// clients of ferry's HTTP API present as bearer tokens. Keys are random,
// shown once at creation, and stored only as SHA-256 hashes: a key has 256
// bits of entropy, so a fast hash is enough and keeps every request's check
// to one indexed lookup.
//
// A key belongs to a tenant and has a role (role.go). Check is the one way
// to authenticate a key: the API's middleware and any other front door (a
// dashboard login) call it, through a Cache, and get the key's Identity.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Prefix starts every key, so a leaked key is easy to recognise.
const Prefix = "fy_"

// prefixLen is how much of a key is kept in clear to tell keys apart.
const prefixLen = len(Prefix) + 6

// Errors of the store.
var (
	// ErrInvalid means the key is unknown, revoked or expired.
	ErrInvalid = errors.New("invalid API key")
	// ErrNotFound means no key has that name or prefix.
	ErrNotFound = errors.New("no such API key")
	// ErrAmbiguous means a name or prefix matches more than one key.
	ErrAmbiguous = errors.New("more than one API key matches")
	// ErrExists means a key with that name is in use.
	ErrExists = errors.New("an API key with that name exists")
	// ErrSpec means the description of a key to create is not valid.
	ErrSpec = errors.New("invalid API key description")
)

// Store keeps API keys in Postgres.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a store over a migrated database.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Identity is who a checked key speaks for: what the API decides on.
type Identity struct {
	ID     int64
	Name   string
	Tenant string
	Role   Role
	// ExpiresAt is when the key stops working, if it ever does.
	ExpiresAt *time.Time
}

// Key is the identity the API's handlers receive.
type Key = Identity

// Can reports whether the key's role grants p.
func (k Identity) Can(p Permission) bool { return k.Role.Can(p) }

// Info is a key as listed: never the key itself.
type Info struct {
	Identity
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Spec describes a key to create.
type Spec struct {
	// Name says what the key is for; unique among keys in use.
	Name string
	// Tenant is TenantDefault when empty.
	Tenant string
	// Role is RoleDefault when empty.
	Role Role
	// TTL, when positive, makes the key expire that long after creation.
	TTL time.Duration
}

// withDefaults fills the spec's empty fields and checks it.
func (sp Spec) withDefaults() (Spec, error) {
	sp.Name = strings.TrimSpace(sp.Name)
	switch {
	case sp.Name == "":
		return sp, errors.New("a name is required")
	case len(sp.Name) > 200 || !utf8.ValidString(sp.Name):
		return sp, errors.New("the name must be valid UTF-8 of at most 200 bytes")
	case strings.IndexFunc(sp.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return sp, errors.New("the name contains a control character")
	case strings.HasPrefix(sp.Name, Prefix):
		return sp, fmt.Errorf("a name must not start with %q: it would read as a key prefix", Prefix)
	case sp.TTL < 0:
		return sp, errors.New("the expiry must be positive")
	}
	if sp.Tenant == "" {
		sp.Tenant = TenantDefault
	}
	if err := CheckTenant(sp.Tenant); err != nil {
		return sp, err
	}
	if sp.Role == "" {
		sp.Role = RoleDefault
	}
	if _, err := ParseRole(string(sp.Role)); err != nil {
		return sp, err
	}
	return sp, nil
}

// Create makes a new key named name in the default tenant with the default
// role and returns it in clear: the only time it can be seen.
func (s *Store) Create(ctx context.Context, name string) (string, error) {
	key, _, err := s.CreateKey(ctx, Spec{Name: name})
	return key, err
}

// CreateKey makes a new key as sp says and returns it in clear (the only
// time it can be seen) with what is stored of it.
func (s *Store) CreateKey(ctx context.Context, sp Spec) (string, Info, error) {
	sp, err := sp.withDefaults()
	if err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w: %w", ErrSpec, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w", err)
	}
	key := Prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	var expires *time.Time
	if sp.TTL > 0 {
		t := time.Now().Add(sp.TTL)
		expires = &t
	}
	// Creations take turns, so that two of one name cannot both pass the
	// name check.
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('ferry api_keys name'))`); err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w", err)
	}
	row := tx.QueryRow(ctx, `
		INSERT INTO api_keys (name, key_hash, prefix, tenant, role, expires_at)
		SELECT $1, $2, $3, $4, $5, $6
		WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL)
		RETURNING `+infoColumns,
		sp.Name, hashOf(key), key[:prefixLen], sp.Tenant, string(sp.Role), expires)
	info, err := scanInfo(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", Info{}, fmt.Errorf("create API key %q: %w (revoke it first, or choose another name)", sp.Name, ErrExists)
	}
	if err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", Info{}, fmt.Errorf("create API key: %w", err)
	}
	return key, info, nil
}

const infoColumns = `id, name, tenant, role, expires_at, prefix, created_at, last_used_at, revoked_at`

func scanInfo(row pgx.Row) (Info, error) {
	var i Info
	err := row.Scan(&i.ID, &i.Name, &i.Tenant, &i.Role, &i.ExpiresAt, &i.Prefix, &i.CreatedAt, &i.LastUsedAt, &i.RevokedAt)
	return i, err
}

// List returns every key, revoked ones too, oldest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	rows, err := s.db.Query(ctx, `SELECT `+infoColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Info, error) { return scanInfo(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return out, nil
}

// Revoke revokes the one key in use whose name, or whose prefix, is ref.
// It returns ErrNotFound or ErrAmbiguous when ref does not name exactly
// one key in use. A revoked key is refused by every process within
// CacheTTLDefault.
func (s *Store) Revoke(ctx context.Context, ref string) (Info, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Info{}, fmt.Errorf("revoke API key: name a key: %w", ErrNotFound)
	}
	// ref is a name, a listed prefix, or the whole key.
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("revoke API key: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT `+infoColumns+` FROM api_keys
		WHERE revoked_at IS NULL AND (name = $1 OR prefix = $1 OR key_hash = $2)
		FOR UPDATE`, ref, hashOf(ref))
	if err != nil {
		return Info{}, fmt.Errorf("revoke API key: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Info, error) { return scanInfo(r) })
	if err != nil {
		return Info{}, fmt.Errorf("revoke API key: %w", err)
	}
	switch {
	case len(found) == 0:
		return Info{}, fmt.Errorf("revoke API key %q: %w in use", ref, ErrNotFound)
	case len(found) > 1:
		return Info{}, fmt.Errorf("revoke API key %q: %w (%d); name it by its prefix", ref, ErrAmbiguous, len(found))
	}
	info := found[0]
	if err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING revoked_at`, info.ID).
		Scan(&info.RevokedAt); err != nil {
		return Info{}, fmt.Errorf("revoke API key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Info{}, fmt.Errorf("revoke API key: %w", err)
	}
	return info, nil
}

func hashOf(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// touchEvery is how stale a key's last-used time may get: it is written at
// most this often per key, not on every request.
const touchEvery = time.Minute

// Check returns the identity of a key in use (not revoked, not expired), or
// ErrInvalid. It notes when the key was last used, to the minute.
func (s *Store) Check(ctx context.Context, key string) (Identity, error) {
	if !strings.HasPrefix(key, Prefix) || len(key) > 100 {
		return Identity{}, ErrInvalid
	}
	var k Identity
	var lastUsed *time.Time
	err := s.db.QueryRow(ctx, `SELECT id, name, tenant, role, expires_at, last_used_at FROM api_keys
		WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, hashOf(key)).
		Scan(&k.ID, &k.Name, &k.Tenant, &k.Role, &k.ExpiresAt, &lastUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, fmt.Errorf("check API key: %w", err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > touchEvery {
		// Best effort: a key that works must not fail because this did.
		_, _ = s.db.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, k.ID)
	}
	return k, nil
}
