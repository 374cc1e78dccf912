// Package audit keeps the trail of state changes made through ferry's API
// and CLI: who (key and tenant), when, and what changed.
package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Actions recorded.
const (
	ActionJobRetry     = "job.retry"
	ActionJobCancel    = "job.cancel"
	ActionJobsRequeue  = "jobs.requeue"
	ActionBatchCreate  = "batch.create"
	ActionKeyCreate    = "apikey.create"
	ActionKeyRevoke    = "apikey.revoke"
	ActionBatchRequeue = "batch.requeue"
	// ActionTargetResume is a request to probe a target paused for
	// refused credentials now.
	ActionTargetResume = "target.resume"
)

// ActionDocumentDelete records the delete of a document (issue 21).
const ActionDocumentDelete = "document.delete"

// Entry is one recorded change.
type Entry struct {
	ID int64
	At time.Time
	// KeyID is the API key that made the change; 0 for the CLI, which
	// speaks to the database directly.
	KeyID   int64
	KeyName string
	// Tenant is the tenant of the key that made the change.
	Tenant string
	Action string
	// Subject is what changed: a job id, a batch or key name.
	Subject string
	// Detail is what else the change was about (filters, counts, role).
	Detail map[string]any
}

// Store keeps the audit trail in Postgres.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a store over a migrated database.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Record appends e (its ID and At are set by the database).
func (s *Store) Record(ctx context.Context, e Entry) error {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO audit (api_key_id, key_name, tenant, action, subject, detail)
		VALUES (nullif($1, 0), $2, $3, $4, $5, $6)`, e.KeyID, e.KeyName, e.Tenant, e.Action, e.Subject, e.Detail)
	if err != nil {
		return fmt.Errorf("record %s of %q in the audit trail: %w", e.Action, e.Subject, err)
	}
	return nil
}

// Filter selects entries. Empty fields match everything.
type Filter struct {
	Tenant string
	Action string
	// Before is the id of the last entry of the previous page.
	Before int64
	// Limit is the page size (1-1000, default 100).
	Limit int
}

// List returns entries newest first and the cursor of the next page (0
// when there is none).
func (s *Store) List(ctx context.Context, f Filter) ([]Entry, int64, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Tenant != "" {
		where = append(where, "tenant = "+arg(f.Tenant))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	q := `SELECT id, at, coalesce(api_key_id, 0), key_name, tenant, action, subject, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit trail: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.ID, &e.At, &e.KeyID, &e.KeyName, &e.Tenant, &e.Action, &e.Subject, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list audit trail: %w", err)
	}
	var next int64
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}
