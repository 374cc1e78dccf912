package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// listingRow is what a listing filters on.
type listingRow struct{ id, tenant, target, status, batch, filename string }

// fillListings writes jobs for the listing tests and returns them: a few
// old jobs of tenant "a" and target "t" in every status and batch "b", then
// thousands of newer SUCCESS jobs of tenant "big" and target "bulk", the
// newest 500 of them waiting for a retry. A listing that filtered a walk of
// the primary key would read all of the newer jobs to find the old ones,
// or the 500 waiting ones to find a SUCCESS.
func fillListings(t *testing.T, pool *pgxpool.Pool) []listingRow {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO jobs (id, tenant, target, batch, status, filename, content_type, size, sha256, object_key, max_attempts,
			finished_at)
		SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
			CASE WHEN i <= 40 THEN 'a' ELSE 'big' END,
			CASE WHEN i <= 40 THEN 't' ELSE 'bulk' END,
			CASE WHEN i <= 40 THEN 'b' END,
			CASE WHEN i <= 40 THEN (ARRAY['QUEUED','RUNNING','RETRYING','SUCCESS','FAILED','CANCELED'])[1 + i % 6]
				WHEN i > 3500 THEN 'RETRYING' ELSE 'SUCCESS' END,
			'f' || i || '.pdf', 'application/pdf', 1, 'x', 'objects/' || i, 3,
			CASE WHEN i > 40 THEN now() END
		FROM generate_series(1, 4000) AS i;
		ANALYZE jobs`)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT id::text, tenant, target, status, coalesce(batch, ''), filename FROM jobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []listingRow
	for rows.Next() {
		var r listingRow
		if err := rows.Scan(&r.id, &r.tenant, &r.target, &r.status, &r.batch, &r.filename); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// listingCases are the shapes of listing the API and the dashboard ask for.
var listingCases = []struct {
	name  string
	scope Scope
	f     Filter
}{
	{"every job", AllTenants(), Filter{}},
	{"one status", AllTenants(), Filter{Status: StatusFailed}},
	{"the bulk status", AllTenants(), Filter{Status: StatusSuccess}},
	{"one target", AllTenants(), Filter{Target: "t"}},
	{"one target's status", AllTenants(), Filter{Target: "t", Status: StatusRunning}},
	{"a tenant's", InTenant("a"), Filter{}},
	{"a tenant's status", InTenant("a"), Filter{Status: StatusFailed}},
	{"a tenant's target", InTenant("a"), Filter{Target: "t"}},
	{"a tenant's batch", InTenant("a"), Filter{Batch: "b"}},
	{"a tenant's batch's status", InTenant("a"), Filter{Batch: "b", Status: StatusQueued}},
	{"another tenant's status", InTenant("big"), Filter{Status: StatusSuccess}},
	{"another tenant's", InTenant("big"), Filter{}},
	{"another target", AllTenants(), Filter{Target: "bulk"}},
	{"a batch", AllTenants(), Filter{Batch: "b"}},
	{"a batch's status", AllTenants(), Filter{Batch: "b", Status: StatusFailed}},
	{"a tenant's file names", InTenant("a"), Filter{FilenameContains: "f1"}},
	{"nobody's", InTenant("nobody"), Filter{}},
}

// TestListPagesMatchTheFilter pages through every listing shape and
// compares what came back, in order, with the rows the filter names.
func TestListPagesMatchTheFilter(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	all := fillListings(t, pool)
	slices.SortFunc(all, func(a, b listingRow) int { return -compareText(a.id, b.id) })
	s := NewStore(pool)
	for _, c := range listingCases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, r := range all {
				if c.scope.Allows(r.tenant) && (c.f.Status == "" || r.status == string(c.f.Status)) &&
					(c.f.Target == "" || r.target == c.f.Target) && (c.f.Batch == "" || r.batch == c.f.Batch) &&
					strings.Contains(r.filename, c.f.FilenameContains) {
					want = append(want, r.id)
				}
			}
			var got []string
			f := c.f
			f.Limit = 7
			ended := false // the last page said so; else paging stopped at 60 rows
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
				list, next, err := s.List(context.Background(), c.scope, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, j := range list {
					got = append(got, j.ID)
				}
				if next == "" {
					ended = true
					break
				}
				if len(got) >= 60 {
					break
				}
				f.Cursor = next
			}
			if !ended && len(want) > len(got) {
				want = want[:len(got)]
			}
			if len(got) == 0 && c.scope.Tenant() != "nobody" {
				t.Fatal("no rows: the case tests nothing")
			}
			if !slices.Equal(got, want) {
				t.Errorf("listed %d jobs, not the %d the filter names (first %v, want %v)", len(got), len(want), head(got), head(want))
			}
		})
	}
}

// TestListReadsAPagePerWalk runs each listing shape on a table where the
// jobs it wants are few and old, and counts the rows Postgres read from
// jobs: at most one page per index walk, whatever lies between.
func TestListReadsAPagePerWalk(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	fillListings(t, pool)
	const limit = 10
	for _, c := range listingCases {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.Limit = limit
			sql, args, err := listSQL(c.scope, f, []string{"a", "big"})
			if err != nil {
				t.Fatal(err)
			}
			walks := map[fanOut]int{walkOne: 1, walkPerStatus: len(Statuses), walkPerTenant: 2}[fanOutOf(c.scope, f)]
			var out string
			if err := pool.QueryRow(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
				t.Fatal(err)
			}
			var plans []struct {
				Plan analyzedNode `json:"Plan"`
			}
			if err := json.Unmarshal([]byte(out), &plans); err != nil {
				t.Fatal(err)
			}
			read := plans[0].Plan.jobsRowsRead()
			// The planner may read all 40 old jobs of a batch rather than
			// walk its status index: a small batch costs little either way.
			if max := walks*(limit+1) + 40; read > float64(max) {
				t.Errorf("read %.0f rows of jobs, more than %d walks × a page of %d and the 40 old jobs:\n%s", read, walks, limit+1, out)
			}
		})
	}
}

// analyzedNode is one node of EXPLAIN (ANALYZE, FORMAT JSON).
type analyzedNode struct {
	Type     string         `json:"Node Type"`
	Relation string         `json:"Relation Name"`
	Rows     float64        `json:"Actual Rows"`
	Loops    float64        `json:"Actual Loops"`
	Removed  float64        `json:"Rows Removed by Filter"`
	Rechecks float64        `json:"Rows Removed by Index Recheck"`
	Plans    []analyzedNode `json:"Plans"`
}

// jobsRowsRead sums the rows that scans of jobs returned or filtered out.
// (The loose scan for tenants reads index entries only, one per probe.)
func (n analyzedNode) jobsRowsRead() float64 {
	var sum float64
	if n.Relation == "jobs" && n.Type != "Index Only Scan" {
		sum += (n.Rows + n.Removed + n.Rechecks) * n.Loops
	}
	for _, c := range n.Plans {
		sum += c.jobsRowsRead()
	}
	return sum
}

func compareText(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func head(ids []string) []string { return ids[:min(3, len(ids))] }
