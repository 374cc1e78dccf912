package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestPagedQueriesWalkAnIndex guards the keyset queries that page through
// every job of a backlog or a batch: each must follow an index in its ORDER
// BY, never sort. With sorting disabled a plan that still sorts is one
// that cannot do otherwise: "ORDER BY id" naming the id::text output column
// did exactly that, 0.7 s a page at 1M jobs.
func TestPagedQueriesWalkAnIndex(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	queries := []struct {
		name string
		sql  string
		args []any
	}{
		{"PublishedBefore", publishedBeforeSQL, []any{time.Now(), "00000000-0000-0000-0000-000000000000", 1000}},
		{"BatchKeys", batchKeysSQL, []any{"b", "default", maxUUID, reportPage}},
		{"Report", reportSQL(false), []any{"b", "default", maxUUID, reportPage}},
		{"Report by status", reportSQL(true), []any{"b", "default", maxUUID, reportPage, "FAILED"}},
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_sort = off"); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); strings.Contains(p, "Sort") {
			t.Errorf("%s sorts instead of walking an index:\n%s", q.name, p)
		}
	}
}
