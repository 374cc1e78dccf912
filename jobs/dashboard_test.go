package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

// fail claims j and finishes it FAILED with msg (or SUCCESS if msg is "").
func finishJob(t *testing.T, s *jobs.Store, id, msg string, httpStatus int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Claim(ctx, id, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	f := jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess, HTTPStatus: httpStatus}
	if msg != "" {
		f = jobs.Finish{Status: jobs.StatusFailed, Outcome: jobs.OutcomeFailed, Error: msg, HTTPStatus: httpStatus}
	}
	if _, err := s.Finish(ctx, id, "w/1", f); err != nil {
		t.Fatal(err)
	}
}

func TestErrorGroupNormalisation(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	for _, c := range []struct{ in, want string }{
		{"HTTP 503: busy", "HTTP 503: busy"},
		{"HTTP 422: folder 0193a7d2-5b1e-7c3a-9f00-1234567890ab not found", "HTTP 422: folder <id> not found"},
		{`file "a.pdf" exists`, `file "…" exists`},
		{"dial tcp 127.0.0.1:43121: connection refused", "dial tcp <n>.<n>:<n>: connection refused"},
		{"checksum 9f86d081884c7d659a2feaa0c55ad015 mismatch", "checksum <hex> mismatch"},
		{"", ""},
		// A JSON body keeps its keys and its words (migration 010): the
		// reason shows, and two reasons of one status are two groups.
		{`send: HTTP 422: {"error":"this target refuses every document"}`, `send: HTTP 422: {"error":"this target refuses every document"}`},
		{`send: HTTP 422: {"error":"quota exceeded"}`, `send: HTTP 422: {"error":"quota exceeded"}`},
		{`send: HTTP 400: {"code":"quota_exceeded","detail":"folder /clients/acme/2026 is full"}`, `send: HTTP 400: {"code":"quota_exceeded","detail":"folder <path> is full"}`},
		{`send: HTTP 409: {"error":{"message":"file \"Facture été 2026.pdf\" exists","id":12345}}`, `send: HTTP 409: {"error":{"message":"file \"…\" exists","id":<n>}}`},
		{`HTTP 422: file "bad-3" refused`, `HTTP 422: file "…" refused`},
		{`HTTP 422: file "Facture été 2026.pdf" refused`, `HTTP 422: file "…" refused`},
		{"open /var/lib/ferry/x/y.pdf: permission denied", "open <path>: permission denied"},
		{"upload misc/deep/a/b.pdf failed", "upload <path> failed"},
		{"upload Invoice-5.pdf failed: HTTP 500", "upload <file> failed: HTTP 500"},
		{`Post "http://127.0.0.1:9100/upload": EOF`, `Post "…": EOF`},
		{"content type application/json refused", "content type application/json refused"},
		{`unterminated "quote here`, `unterminated "quote here`},
	} {
		var got string
		if err := pool.QueryRow(context.Background(), `SELECT ferry_error_group($1)`, c.in).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("ferry_error_group(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFailureGroupsAndRequeueOneGroup(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	inBatch := func(n *jobs.New) { n.Batch = "b" }
	var ids []string
	for i, msg := range []string{
		`HTTP 422: file "a.pdf" refused`, `HTTP 422: file "b.pdf" refused`, `HTTP 422: file "c.pdf" refused`,
		"HTTP 503: busy", "", "",
	} {
		j := newJob(t, s, inBatch, func(n *jobs.New) { n.Filename = []string{"a.pdf", "b.pdf", "c.pdf", "d.doc", "E.PDF", "f.txt"}[i] })
		finishJob(t, s, j.ID, msg, 0)
		ids = append(ids, j.ID)
	}
	groups, err := s.FailureGroups(ctx, jobs.TenantDefault, "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Group != `HTTP 422: file "…" refused` || groups[0].Count != 3 ||
		groups[1].Group != "HTTP 503: busy" || groups[1].Count != 1 || groups[0].FirstSeen == nil || groups[0].LastSeen == nil {
		t.Fatalf("groups: %+v", groups)
	}
	if groups[0].ExampleJob == "" || groups[0].Example == "" {
		t.Errorf("group without an example: %+v", groups[0])
	}
	// Re-queue exactly one group.
	g := groups[0].Group
	n, err := s.RequeueFailed(ctx, jobs.AllTenants(), jobs.RequeueFilter{Batch: "b", ErrorGroup: &g}, nil)
	if err != nil || n != 3 {
		t.Fatalf("requeue group: %d %v", n, err)
	}
	for i, id := range ids[:4] {
		j, _ := s.Get(ctx, jobs.AllTenants(), id)
		if want := map[bool]jobs.Status{true: jobs.StatusQueued, false: jobs.StatusFailed}[i < 3]; j.Status != want {
			t.Errorf("job %d: %s, want %s", i, j.Status, want)
		}
	}
	// Filename contains, ignoring case, with LIKE's wildcards taken
	// literally.
	list, _, err := s.List(ctx, jobs.AllTenants(), jobs.Filter{Batch: "b", FilenameContains: "pdf"})
	if err != nil || len(list) != 4 {
		t.Fatalf("filename contains pdf: %d %v", len(list), err)
	}
	if list, _, _ := s.List(ctx, jobs.AllTenants(), jobs.Filter{FilenameContains: "%"}); len(list) != 0 {
		t.Errorf("filename contains %%: %d jobs, want 0", len(list))
	}
}

func TestActivityAndThroughput(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	inBatch := func(n *jobs.New) { n.Batch = "tp"; n.Target = "t1" }
	for _, msg := range []string{"", "", "HTTP 429: slow down", ""} {
		j := newJob(t, s, inBatch)
		status := 200
		if msg != "" {
			status = 429
		}
		finishJob(t, s, j.ID, msg, status)
	}
	running := newJob(t, s, inBatch)
	if _, err := s.Claim(ctx, running.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	act, err := s.Activity(ctx, jobs.AllTenants(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := act["t1"]
	if a == nil || a.Delivered != 3 || a.Failed != 1 || a.InFlight != 1 || a.RateLimited != 1 || len(a.PerMinute) != 60 || sum(a.PerMinute) != 3 {
		t.Fatalf("activity: %+v", a)
	}
	pts, err := s.BatchThroughput(ctx, jobs.TenantDefault, "tp")
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed int64
	for _, p := range pts {
		ok += p.Success
		failed += p.Failed
	}
	if len(pts) == 0 || ok != 3 || failed != 1 || pts[len(pts)-1].Seconds != 60 {
		t.Fatalf("throughput: %+v", pts)
	}
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}
