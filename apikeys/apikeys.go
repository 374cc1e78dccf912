// Package apikeys creates and checks the API keys that clients of ferry's
// HTTP API present as bearer tokens. Keys are random, shown once at creation,
// and stored only as SHA-256 hashes: a key has 256 bits of entropy, so a fast
// hash is enough and keeps every request's check to one indexed lookup.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Prefix starts every key, so a leaked key is easy to recognise.
const Prefix = "fy_"

// ErrInvalid means the key is unknown or revoked.
var ErrInvalid = errors.New("invalid API key")

// Store keeps API keys in Postgres.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a store over a migrated database.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Key identifies a checked API key.
type Key struct {
	ID   int64
	Name string
}

// Create makes a new key named name and returns it in clear: the only time
// it can be seen.
func (s *Store) Create(ctx context.Context, name string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", fmt.Errorf("create API key: a name is required")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("create API key: %w", err)
	}
	key := Prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(key))
	_, err := s.db.Exec(ctx, `INSERT INTO api_keys (name, key_hash, prefix) VALUES ($1, $2, $3)`,
		name, sum[:], key[:len(Prefix)+6])
	if err != nil {
		return "", fmt.Errorf("create API key: %w", err)
	}
	return key, nil
}

// Check returns the key's identity, or ErrInvalid.
func (s *Store) Check(ctx context.Context, key string) (Key, error) {
	if !strings.HasPrefix(key, Prefix) {
		return Key{}, ErrInvalid
	}
	sum := sha256.Sum256([]byte(key))
	var k Key
	err := s.db.QueryRow(ctx, `SELECT id, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, sum[:]).
		Scan(&k.ID, &k.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, ErrInvalid
	}
	if err != nil {
		return Key{}, fmt.Errorf("check API key: %w", err)
	}
	return k, nil
}
