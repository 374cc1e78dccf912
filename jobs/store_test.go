package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

func newStore(t *testing.T) *jobs.Store {
	pool, _ := testenv.Postgres(t)
	return jobs.NewStore(pool)
}

func newJob(t *testing.T, s *jobs.Store, mut ...func(*jobs.New)) jobs.Job {
	t.Helper()
	n := jobs.New{ID: uuid.Must(uuid.NewV7()).String(), Target: "t", Filename: "f.pdf", ContentType: "application/pdf",
		Size: 3, SHA256: "abc", ObjectKey: "objects/x", MaxAttempts: 2, Params: map[string]string{"k": "v"}}
	for _, m := range mut {
		m(&n)
	}
	j, created, err := s.Create(context.Background(), n)
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	return j
}

func TestClaimRules(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	j := newJob(t, s)

	claimed, err := s.Claim(ctx, j.ID, "w1/a", time.Minute)
	if err != nil || claimed.Status != jobs.StatusRunning || claimed.Attempts != 1 || claimed.LeaseOwner != "w1/a" {
		t.Fatalf("claim: %+v %v", claimed, err)
	}
	// A second claim while it runs is refused, saying until when.
	_, err = s.Claim(ctx, j.ID, "w2/b", time.Minute)
	var ce *jobs.ClaimError
	if !errors.As(err, &ce) || ce.Status != jobs.StatusRunning || time.Until(ce.NotBefore) < 50*time.Second {
		t.Fatalf("second claim: %v", err)
	}
	// Only the owner may extend, checkpoint or finish.
	if err := s.ExtendLease(ctx, j.ID, "w2/b", time.Minute); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("extend by another: %v", err)
	}
	if err := s.SaveCheckpoint(ctx, j.ID, "w1/a", map[string]string{"handle": "h1"}); err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Hour)
	got, err := s.Finish(ctx, j.ID, "w1/a", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry, Error: "HTTP 503", HTTPStatus: 503, NextAttemptAt: next})
	if err != nil || got.Status != jobs.StatusRetrying || got.LastError != "HTTP 503" || got.Checkpoint["handle"] != "h1" {
		t.Fatalf("finish: %+v %v", got, err)
	}
	if _, err := s.Finish(ctx, j.ID, "w1/a", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess}); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("finishing twice: %v", err)
	}
	// Not due yet: refused until next_attempt_at.
	if _, err := s.Claim(ctx, j.ID, "w3/c", time.Minute); !errors.As(err, &ce) || ce.Status != jobs.StatusRetrying || ce.NotBefore.Before(next.Add(-time.Second)) {
		t.Errorf("claim before due: %v", err)
	}
	as, _ := s.Attempts(ctx, jobs.AllTenants(), j.ID)
	if len(as) != 1 || as[0].Outcome != jobs.OutcomeRetry || as[0].HTTPStatus != 503 || as[0].FinishedAt == nil {
		t.Errorf("attempts %+v", as)
	}
	if _, err := s.Claim(ctx, uuid.NewString(), "w", time.Minute); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("claim of unknown job: %v", err)
	}
}

func TestRecoverExpired(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	ctx := context.Background()
	a := newJob(t, s)
	b := newJob(t, s, func(n *jobs.New) { n.MaxAttempts = 1 })
	for _, j := range []jobs.Job{a, b} {
		claimed, err := s.Claim(ctx, j.ID, "dead/1", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		testenv.WaitForDBTime(t, pool, *claimed.LeaseExpiresAt) // the 1ms lease lapses
	}
	refs, err := s.RecoverExpired(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].ID != a.ID {
		t.Fatalf("recovered %v, want only %s (b had no attempts left)", refs, a.ID)
	}
	ja, _ := s.Get(ctx, jobs.AllTenants(), a.ID)
	jb, _ := s.Get(ctx, jobs.AllTenants(), b.ID)
	if ja.Status != jobs.StatusRetrying || jb.Status != jobs.StatusFailed || jb.LastError == "" {
		t.Errorf("a %s, b %s (%s)", ja.Status, jb.Status, jb.LastError)
	}
	as, _ := s.Attempts(ctx, jobs.AllTenants(), a.ID)
	if as[0].Outcome != jobs.OutcomeAbandoned {
		t.Errorf("attempt %+v, want ABANDONED", as[0])
	}
}

func TestUnpublished(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	published := newJob(t, s)
	if err := s.MarkEnqueued(ctx, jobs.RefOf(published)); err != nil {
		t.Fatal(err)
	}
	orphan := newJob(t, s)
	// Within the grace, the API's own publish is awaited.
	if refs, _ := s.Unpublished(ctx, time.Hour, 10); len(refs) != 0 {
		t.Fatalf("found %v within the grace", refs)
	}
	refs, err := s.Unpublished(ctx, 0, 10)
	if err != nil || len(refs) != 1 || refs[0].ID != orphan.ID {
		t.Fatalf("found %v %v, want the unpublished job only", refs, err)
	}
	// Until it is marked, a job is found again: a failed publish is retried.
	if refs, _ := s.Unpublished(ctx, 0, 10); len(refs) != 1 {
		t.Fatalf("found %v, want the job again", refs)
	}
	if err := s.MarkEnqueued(ctx, refs...); err != nil {
		t.Fatal(err)
	}
	if refs, _ := s.Unpublished(ctx, 0, 10); len(refs) != 0 {
		t.Fatalf("found %v after marking", refs)
	}
}

// A job that changed after its Ref was read (a worker took it and made it
// RETRYING) is not marked enqueued by a late mark.
func TestMarkEnqueuedSkipsChangedJobs(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	j := newJob(t, s)
	ref := jobs.RefOf(j)
	if _, err := s.Claim(ctx, j.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, j.ID, "w/1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry,
		Error: "HTTP 503", NextAttemptAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkEnqueued(ctx, ref); err != nil {
		t.Fatal(err)
	}
	refs, err := s.Unpublished(ctx, time.Hour, 10)
	if err != nil || len(refs) != 1 || refs[0].ID != j.ID {
		t.Fatalf("found %v %v: the retry must stay unpublished", refs, err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	first := newJob(t, s, func(n *jobs.New) { n.IdempotencyKey = "k1" })
	n := jobs.New{ID: uuid.Must(uuid.NewV7()).String(), Target: "t", Filename: "other", ContentType: "x", ObjectKey: "o", MaxAttempts: 1, IdempotencyKey: "k1"}
	again, created, err := s.Create(ctx, n)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("same key: %v created=%v id=%s, want %s", err, created, again.ID, first.ID)
	}
}

func TestRetryAndCancel(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	j := newJob(t, s)
	if _, err := s.Retry(ctx, jobs.AllTenants(), j.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("retry of a QUEUED job: %v", err)
	}
	c, err := s.Cancel(ctx, jobs.AllTenants(), j.ID)
	if err != nil || c.Status != jobs.StatusCanceled || c.FinishedAt == nil {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	r, err := s.Retry(ctx, jobs.AllTenants(), j.ID)
	if err != nil || r.Status != jobs.StatusQueued || r.Attempts != 0 || r.NextAttemptAt == nil {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if _, err := s.Get(ctx, jobs.AllTenants(), "not-a-uuid"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("malformed id: %v", err)
	}
}

// A job whose row is locked (a claim in progress) is skipped by the mark,
// not waited for; the others are marked.
func TestMarkEnqueuedSkipsLockedJobs(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	ctx := testenv.Context(t)
	locked, free := newJob(t, s), newJob(t, s)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, locked.ID); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.MarkEnqueued(mctx, jobs.RefOf(locked), jobs.RefOf(free)); err != nil {
		t.Fatalf("mark waited for the locked row: %v", err)
	}
	_ = tx.Rollback(ctx)
	refs, err := s.Unpublished(ctx, 0, 10)
	if err != nil || len(refs) != 1 || refs[0].ID != locked.ID {
		t.Fatalf("unpublished %v %v, want only the locked job", refs, err)
	}
}
