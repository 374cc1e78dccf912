package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

// A job keeps the traceparent of its upload wherever the store hands it
// out to be published again (issue 25): a new job never published, a
// retry due, a job of a lost stream, a job whose worker died.
func TestTraceParentKeptWithTheJob(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	s := jobs.NewStore(pool)
	ctx := context.Background()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	out, created, err := s.RecordRequest(ctx, jobs.Request{Jobs: []jobs.New{{ID: uuid.Must(uuid.NewV7()).String(), Target: "t",
		Filename: "f.pdf", ContentType: "application/pdf", Size: 3, SHA256: "abc", ObjectKey: "objects/x", MaxAttempts: 3, TraceParent: tp}}})
	if err != nil || !created || out[0].TraceParent != tp || jobs.RefOf(out[0]).TraceParent != tp {
		t.Fatalf("record: %v %v %+v", err, created, out)
	}
	id := out[0].ID
	check := func(what string, refs []jobs.Ref, err error) {
		t.Helper()
		if err != nil || len(refs) != 1 || refs[0].ID != id || refs[0].TraceParent != tp {
			t.Fatalf("%s: %+v %v, want the job with its traceparent", what, refs, err)
		}
	}
	refs, err := s.Unpublished(ctx, 0, 10)
	check("never published", refs, err)
	refs, err = s.PublishedBefore(ctx, time.Now().Add(time.Hour), "", 10)
	check("lost stream", refs, err)

	job, err := s.Claim(ctx, id, "w1", time.Minute)
	if err != nil || job.TraceParent != tp {
		t.Fatalf("claim: %v %q", err, job.TraceParent)
	}
	if _, err := s.Finish(ctx, id, "w1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry, Error: "503"}); err != nil {
		t.Fatal(err)
	}
	refs, err = s.Unpublished(ctx, 0, 10)
	check("retry due", refs, err)

	job, err = s.Claim(ctx, id, "w2", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitForDBTime(t, pool, *job.LeaseExpiresAt)
	refs, err = s.RecoverExpired(ctx, 10)
	check("worker died", refs, err)
}
