package main

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// docLoader bulk-loads delivered documents and their versions into ferry's
// documents and jobs tables, in SQL (INSERT … SELECT generate_series): no
// row crosses the wire. Document g is at target statusTargets[g%4] with
// key docLoadKey(g) and id md5("doc-g"); one in ten has 3 versions, the
// others 1.
type docLoader struct {
	pool *pgxpool.Pool
	n    int
}

func docLoadKey(g int) string { return fmt.Sprintf("docs/%07d/report.pdf", g) }

// docLoadSQL inserts documents [$1, $2) with their versions ($3: the
// targets). Ids are md5 digests of names, so the benchmark knows them
// without reading them back.
const docLoadSQL = `
WITH d AS (
	SELECT g, ($3::text[])[g % cardinality($3::text[]) + 1] AS target,
		CASE WHEN g % 10 = 0 THEN 3 ELSE 1 END AS versions,
		now() - interval '40 days' + g * interval '1 second' AS t
	FROM generate_series($1::int, $2::int - 1) g
), docs AS (
	INSERT INTO documents (id, tenant, target, key, state, remote, versions, latest_job,
		current_version, current_sha256, current_size, current_job, created_at, updated_at)
	SELECT md5('doc-' || g)::uuid, 'default', target, format('docs/%s/report.pdf', lpad(g::text, 7, '0')), 'active',
		jsonb_build_object('etag', '"' || md5('etag-' || g) || '"'), versions, md5(format('job-%s-%s', g, versions))::uuid,
		versions, md5(format('a-%s-%s', g, versions)) || md5(format('b-%s-%s', g, versions)), 50000 + g % 500000,
		md5(format('job-%s-%s', g, versions))::uuid, t, t + versions * interval '1 hour'
	FROM d
)
INSERT INTO jobs (id, tenant, target, filename, content_type, size, sha256, object_key, status, attempts, max_attempts,
	next_attempt_at, remote_id, enqueued_at, object_deleted_at, created_at, updated_at, finished_at, document_id, version, op)
SELECT md5(format('job-%s-%s', g, v))::uuid, 'default', target, 'report.pdf', 'application/pdf', 50000 + g % 500000,
	md5(format('a-%s-%s', g, v)) || md5(format('b-%s-%s', g, v)), format('objects/doc-%s-%s', g, v), 'SUCCESS', 1, 10,
	t + v * interval '1 hour', 'doc-' || g || '/v' || v, t + v * interval '1 hour', t + v * interval '1 hour' + interval '2 seconds',
	t + v * interval '1 hour', t + v * interval '1 hour' + interval '2 seconds', t + v * interval '1 hour' + interval '2 seconds',
	md5('doc-' || g)::uuid, v, 'put'
FROM d, generate_series(1, d.versions) v`

// load adds documents until there are upto, then vacuums and analyzes, as
// autovacuum would have.
func (l *docLoader) load(ctx context.Context, upto int) error {
	// In slices, so that one statement's work stays bounded.
	const slice = 100_000
	for lo := l.n; lo < upto; lo += slice {
		hi := min(upto, lo+slice)
		if _, err := l.pool.Exec(ctx, docLoadSQL, lo, hi, statusTargets); err != nil {
			return fmt.Errorf("load documents %d-%d: %w", lo, hi, err)
		}
	}
	l.n = max(l.n, upto)
	if _, err := l.pool.Exec(ctx, "VACUUM (ANALYZE) documents, jobs"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// randomID is the id of a random loaded document.
func (l *docLoader) randomID(rng *rand.Rand) string {
	return uuid.UUID(md5.Sum(fmt.Appendf(nil, "doc-%d", rng.IntN(l.n)))).String()
}

// randomCursor returns the cursor of a page that starts after a random
// document's key (ferry's encoding, jobs/document_list.go: key, tenant and
// target joined by NUL, base64url), query-escaped, and its target. The
// document is far enough from the end that a full page follows it.
func (l *docLoader) randomCursor(rng *rand.Rand) (cursor, target string) {
	g := rng.IntN(max(1, l.n-200*len(statusTargets)))
	target = statusTargets[g%len(statusTargets)]
	raw := docLoadKey(g) + "\x00default\x00" + target
	return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(raw))), target
}
