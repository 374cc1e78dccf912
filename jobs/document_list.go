package jobs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Reading documents: one with its versions, pages of them by key.

// DocumentFilter selects documents for Documents. Empty fields match every
// document.
type DocumentFilter struct {
	Target    string
	Batch     string
	KeyPrefix string
	State     string
	// Limit is the page size (1-1000, default 100).
	Limit int
	// Cursor is the previous page's NextCursor.
	Cursor string
}

// documentCursor is where a page of documents ends: pages go by key, then
// tenant and target (an administrator sees one key at many).
type documentCursor struct {
	Key, Tenant, Target string
}

// encode joins the three with NUL, which none may hold (keys hold no
// control character, tenants and targets are names).
func (c documentCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Key + "\x00" + c.Tenant + "\x00" + c.Target))
}

func decodeDocumentCursor(s string) (documentCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(b), "\x00")
	if err != nil || len(parts) != 3 {
		return documentCursor{}, ErrInvalidCursor
	}
	return documentCursor{Key: parts[0], Tenant: parts[1], Target: parts[2]}, nil
}

// Documents returns a page of the documents in scope that match f, by
// key, and the cursor of the next page ("" after the last).
func (s *Store) Documents(ctx context.Context, scope Scope, f DocumentFilter) ([]Document, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	args := []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := []string{scope.sql("tenant", arg)}
	if f.Target != "" {
		where = append(where, "target = "+arg(f.Target))
	}
	if f.KeyPrefix != "" {
		where = append(where, "key LIKE "+arg(likeEscaper.Replace(f.KeyPrefix)+"%"))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(f.State))
	}
	if f.Batch != "" {
		where = append(where, "EXISTS (SELECT 1 FROM jobs WHERE jobs.document_id = documents.id AND jobs.batch = "+arg(f.Batch)+")")
	}
	if f.Cursor != "" {
		c, err := decodeDocumentCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(key, tenant, target) > ("+arg(c.Key)+", "+arg(c.Tenant)+", "+arg(c.Target)+")")
	}
	q := `SELECT ` + documentColumns + ` FROM documents WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY key, tenant, target LIMIT ` + arg(f.Limit+1)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list documents: %w", err)
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list documents: %w", err)
	}
	next := ""
	if len(docs) > f.Limit {
		docs = docs[:f.Limit]
		last := docs[len(docs)-1]
		next = documentCursor{Key: last.Key, Tenant: last.Tenant, Target: last.Target}.encode()
	}
	return docs, next, nil
}

// GetDocument returns the document with id in scope, or
// ErrDocumentNotFound: another tenant's document is not found.
func (s *Store) GetDocument(ctx context.Context, scope Scope, id string) (Document, error) {
	if !validID(id) {
		return Document{}, ErrDocumentNotFound
	}
	args := []any{id}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	d, err := scanDocument(s.db.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE id = $1 AND `+scope.sql("tenant", arg), args...))
	if err != nil {
		return Document{}, fmt.Errorf("document %s: %w", id, err)
	}
	return d, nil
}

// DocumentByKey returns the document of key at target in tenant, or
// ErrDocumentNotFound.
func (s *Store) DocumentByKey(ctx context.Context, tenant, target, key string) (Document, error) {
	d, err := scanDocument(s.db.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE tenant = $1 AND target = $2 AND key = $3`, tenant, target, key))
	if err != nil {
		return Document{}, fmt.Errorf("document %q: %w", key, err)
	}
	return d, nil
}

// Versions returns every version of document id, oldest first. The caller
// has checked the document is in scope (GetDocument).
func (s *Store) Versions(ctx context.Context, id string) ([]Version, error) {
	rows, err := s.db.Query(ctx, `
		SELECT version, id::text, op, status, sha256, size, created_at,
			CASE WHEN status = 'SUCCESS' THEN finished_at END, coalesce(remote_id, '')
		FROM jobs WHERE document_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, fmt.Errorf("versions of document %s: %w", id, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) {
		var v Version
		err := r.Scan(&v.Version, &v.Job, &v.Op, &v.Status, &v.SHA256, &v.Size, &v.AcceptedAt, &v.DeliveredAt, &v.RemoteID)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("versions of document %s: %w", id, err)
	}
	return vs, nil
}

// DocumentRemote returns what the connector reported of document id at
// its target (for the worker's delivery of its next version).
func (s *Store) DocumentRemote(ctx context.Context, id string) (map[string]string, error) {
	var remote map[string]string
	err := s.db.QueryRow(ctx, `SELECT remote FROM documents WHERE id = $1`, id).Scan(&remote)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("document %s: %w", id, ErrDocumentNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", id, err)
	}
	if remote == nil {
		remote = map[string]string{}
	}
	return remote, nil
}
