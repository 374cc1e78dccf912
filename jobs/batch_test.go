package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

func batchJob(batch, key string, apiKey int64, size int64) jobs.New {
	id := uuid.Must(uuid.NewV7()).String()
	return jobs.New{ID: id, Target: "t", Batch: batch, Filename: "f.txt", ContentType: "text/plain",
		Size: size, SHA256: "00", ObjectKey: "objects/" + id, MaxAttempts: 2, IdempotencyKey: key, APIKeyID: apiKey}
}

func batchAPIKey(t *testing.T, pool *pgxpool.Pool, name string) int64 {
	t.Helper()
	ks := apikeys.NewStore(pool)
	k, err := ks.Create(testenv.Context(t), name)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Check(testenv.Context(t), k)
	if err != nil {
		t.Fatal(err)
	}
	return key.ID
}

// trueCounts counts a batch's jobs the slow way.
func batchTrueCounts(t *testing.T, pool *pgxpool.Pool, batch string) map[jobs.Status]jobs.Count {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status, count(*), sum(size) FROM jobs WHERE batch = $1 GROUP BY status`, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[jobs.Status]jobs.Count{}
	for _, s := range jobs.Statuses {
		out[s] = jobs.Count{}
	}
	for rows.Next() {
		var s jobs.Status
		var c jobs.Count
		if err := rows.Scan(&s, &c.Files, &c.Bytes); err != nil {
			t.Fatal(err)
		}
		out[s] = c
	}
	return out
}

func TestBatchCountsFollowEveryTransition(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	key := batchAPIKey(t, pool, "k")

	// Summaries read concurrently with the changes, folding the deltas as
	// they go, must not lose or double any.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.BatchSummary(ctx, jobs.TenantDefault, "b"); err != nil && !errors.Is(err, jobs.ErrBatchNotFound) {
					t.Errorf("summary: %v", err)
					return
				}
			}
		})
	}
	var ids []string
	for i := range 150 {
		j, created, err := s.CreateWithPath(ctx, batchJob("b", fmt.Sprint("k", i), key, int64(i)), fmt.Sprintf("dir/f%d.txt", i))
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		ids = append(ids, j.ID)
	}
	// Not in a batch: not counted.
	if _, _, err := s.CreateWithPath(ctx, batchJob("", "", key, 5), ""); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:120] {
		if _, err := s.Claim(ctx, id, "w", time.Minute); err != nil {
			t.Fatal(err)
		}
		var f jobs.Finish
		switch i % 4 {
		case 0:
			f = jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess, RemoteID: "r"}
		case 1:
			f = jobs.Finish{Status: jobs.StatusFailed, Outcome: jobs.OutcomeFailed, Error: "HTTP 422: refused"}
		case 2:
			f = jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry, Error: "HTTP 503", NextAttemptAt: time.Now().Add(time.Hour)}
		case 3:
			continue // stays RUNNING
		}
		if err := s.ExtendLease(ctx, id, "w", time.Minute); err != nil { // no status change: no delta
			t.Fatal(err)
		}
		if _, err := s.Finish(ctx, id, "w", f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Cancel(ctx, jobs.AllTenants(), ids[140]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retry(ctx, jobs.AllTenants(), ids[1]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueFailed(ctx, jobs.AllTenants(), jobs.RequeueFilter{Batch: "b", Error: "422"}, nil); err != nil || n != 29 {
		t.Fatalf("requeue: %d %v, want 29", n, err)
	}
	close(stop)
	readers.Wait()

	sum, err := s.BatchSummary(ctx, jobs.TenantDefault, "b")
	if err != nil {
		t.Fatal(err)
	}
	want := batchTrueCounts(t, pool, "b")
	for _, st := range jobs.Statuses {
		if sum.ByStatus[st] != want[st] {
			t.Errorf("%s: summary says %+v, jobs say %+v", st, sum.ByStatus[st], want[st])
		}
	}
	if sum.Total.Files != 150 || sum.Pending.Files+sum.Final.Files != 150 {
		t.Errorf("total %+v pending %+v final %+v", sum.Total, sum.Pending, sum.Final)
	}
	if sum.StartedAt == nil || sum.UpdatedAt == nil || sum.UpdatedAt.Before(*sum.StartedAt) {
		t.Errorf("started %v updated %v", sum.StartedAt, sum.UpdatedAt)
	}
	if sum.FilesPerSecond <= 0 || sum.ETASeconds == nil {
		t.Errorf("rate %v eta %v: jobs became final in the last minutes", sum.FilesPerSecond, sum.ETASeconds)
	}
	var deltas int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM batch_counts WHERE batch = 'b'`).Scan(&deltas); err != nil {
		t.Fatal(err)
	}
	if deltas > 100 {
		t.Errorf("%d count rows left after compaction, want at most one per status and minute", deltas)
	}
	if _, err := s.BatchSummary(ctx, jobs.TenantDefault, "nothing"); err == nil {
		t.Error("summary of an unknown batch")
	}
}

func TestIdempotencyKeyIsTheBatchs(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	a, b := batchAPIKey(t, pool, "a"), batchAPIKey(t, pool, "b")

	first, created, err := s.CreateWithPath(ctx, batchJob("m", "K", a, 1), "x")
	if err != nil || !created {
		t.Fatal(created, err)
	}
	// Another API key, same batch and key: the same job.
	again, created, err := s.CreateWithPath(ctx, batchJob("m", "K", b, 1), "x")
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("same batch and key from another API key: created=%v id %s, want %s (%v)", created, again.ID, first.ID, err)
	}
	// Same API key and key in another batch: the key is the API key's too.
	other, created, err := s.CreateWithPath(ctx, batchJob("n", "K", a, 1), "x")
	if err != nil || created || other.ID != first.ID {
		t.Fatalf("same API key and key, other batch: created=%v %s (%v)", created, other.ID, err)
	}
	// Outside a batch, keys stay per API key.
	j1, c1, err1 := s.CreateWithPath(ctx, batchJob("", "L", a, 1), "")
	j2, c2, err2 := s.CreateWithPath(ctx, batchJob("", "L", b, 1), "")
	if err1 != nil || err2 != nil || !c1 || !c2 || j1.ID == j2.ID {
		t.Fatalf("no batch: %v %v %v %v", c1, c2, err1, err2)
	}
}

func TestRequeueFailedWorksThroughChunks(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	// 4,500 FAILED jobs (more than two chunks), a third of them with
	// another error, spread over two targets and two batches.
	_, err := pool.Exec(ctx, `
		INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key, status,
			attempts, max_attempts, last_error, finished_at)
		SELECT gen_random_uuid(), CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, CASE WHEN i % 5 = 0 THEN 'x' ELSE 'y' END,
			'f', 'text/plain', 1, '00', 'objects/' || i, 'FAILED', 3, 3,
			CASE WHEN i % 3 = 0 THEN 'Connection TIMED OUT' ELSE 'HTTP 422' END, now()
		FROM generate_series(1, 4500) i`)
	if err != nil {
		t.Fatal(err)
	}
	count := func(where string) int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'FAILED' AND `+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := []struct {
		f     jobs.RequeueFilter
		where string
	}{
		{jobs.RequeueFilter{Target: "a", Error: "timed out"}, "target = 'a' AND last_error ILIKE '%timed out%'"},
		{jobs.RequeueFilter{Batch: "x"}, "batch = 'x'"},
		{jobs.RequeueFilter{}, "true"},
	}
	for _, c := range cases {
		want := count(c.where)
		chunks, got := 0, 0
		n, err := s.RequeueFailed(ctx, jobs.AllTenants(), c.f, func(refs []jobs.Ref) { chunks++; got += len(refs) })
		if err != nil || n != want || got != want {
			t.Fatalf("%+v: re-queued %d (chunks gave %d), want %d: %v", c.f, n, got, want, err)
		}
		if left := count(c.where); left != 0 {
			t.Errorf("%+v: %d matching jobs still FAILED", c.f, left)
		}
	}
	var queued, attempts int
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(attempts), 0) FROM jobs WHERE status = 'QUEUED' AND enqueued_at IS NULL AND finished_at IS NULL`).Scan(&queued, &attempts); err != nil {
		t.Fatal(err)
	}
	if queued != 4500 || attempts != 0 {
		t.Errorf("%d jobs QUEUED unpublished with %d attempts, want 4500 with 0", queued, attempts)
	}
}
