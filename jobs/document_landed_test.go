package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/jobs"
)

// Versions whose attempt may have reached the target (mayHaveLanded) are
// never SUPERSEDED: they go out again, before the newer version.

// A worker dying during a version with a newer one waiting: the older one
// may have reached the target, so it is not superseded at recovery but
// retried first; the newer one waits for it.
func TestDocumentExpiredVersionNotSuperseded(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	v1 := recordVersion(t, s, "a", "k", "s1")
	if _, err := s.Claim(ctx, v1.ID, "w/1", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	v2 := recordVersion(t, s, "a", "k", "s2")
	deadline := time.Now().Add(10 * time.Second)
	for mustGet(t, s, v1.ID).Status == jobs.StatusRunning && time.Now().Before(deadline) {
		if _, err := s.RecoverExpired(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	if st := mustGet(t, s, v1.ID).Status; st != jobs.StatusRetrying {
		t.Fatalf("v1 is %s, want RETRYING", st)
	}
	// A newer version does not supersede it either.
	v3 := recordVersion(t, s, "a", "k", "s3")
	if st := mustGet(t, s, v1.ID).Status; st != jobs.StatusRetrying {
		t.Fatalf("v1 after v3 is %s, want RETRYING", st)
	}
	if st := mustGet(t, s, v2.ID).Status; st != jobs.StatusSuperseded {
		t.Fatalf("v2 (never started) after v3 is %s, want SUPERSEDED", st)
	}
	wantVersionOrder(t, s, v1, v3)
}

// A version whose attempt got no answer (a lost answer, a timeout) may be
// at the target: a newer version does not supersede it, before or after
// the attempt ends, and the newer one waits for it.
func TestDocumentUnansweredVersionNotSuperseded(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	v1 := recordVersion(t, s, "a", "k", "s1")
	if _, err := s.Claim(ctx, v1.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := recordVersion(t, s, "a", "k", "s2")
	f, err := s.Finish(ctx, v1.ID, "w/1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry, Error: "put: connection reset"})
	if err != nil || f.Status != jobs.StatusRetrying {
		t.Fatalf("v1 finish without an answer: %+v %v, want RETRYING", f, err)
	}
	_ = recordVersion(t, s, "a", "k", "s3")
	if st := mustGet(t, s, v1.ID).Status; st != jobs.StatusRetrying {
		t.Fatalf("v1 after v3 is %s, want RETRYING", st)
	}
	if st := mustGet(t, s, v2.ID).Status; st != jobs.StatusSuperseded {
		t.Fatalf("v2 is %s, want SUPERSEDED", st)
	}
}

// wantVersionOrder claims older (it goes first), checks that newer waits
// for it, finishes older and claims newer.
func wantVersionOrder(t *testing.T, s *jobs.Store, older, newer jobs.Job) {
	t.Helper()
	ctx := context.Background()
	var ce *jobs.ClaimError
	if _, err := s.Claim(ctx, newer.ID, "w/n", time.Minute); !errors.As(err, &ce) || !ce.Blocked {
		t.Fatalf("claim of version %d while version %d waits: %v, want blocked", newer.Version, older.Version, err)
	}
	if _, err := s.Claim(ctx, older.ID, "w/o", time.Minute); err != nil {
		t.Fatalf("claim of version %d: %v", older.Version, err)
	}
	if _, err := s.Finish(ctx, older.ID, "w/o", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, newer.ID, "w/n", time.Minute); err != nil {
		t.Fatalf("claim of version %d after version %d: %v", newer.Version, older.Version, err)
	}
}
