package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
)

// A target answering Retry-After: 9000000000 (285 years) does not park the
// job until 2312: the wait is capped at the target's max_retry_after (6h by
// default, 2h here).
func TestRetryAfterCapped(t *testing.T) {
	t.Parallel()
	s, base := newSink(t, sink.Options{})
	s.Fail(1, http.StatusServiceUnavailable, 9_000_000_000*time.Second)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: raw, kind: http, url: %q, method: PUT}
  - {name: capped, kind: http, url: %q, method: PUT, max_retry_after: 2h}
`, base+"/ok/raw", base+"/ok/capped"), pipelineOptions{})
	for _, tc := range []struct {
		target string
		limit  time.Duration
	}{{"raw", 6 * time.Hour}, {"capped", 2 * time.Hour}} {
		if tc.target == "capped" {
			s.Fail(1, http.StatusServiceUnavailable, 9_000_000_000*time.Second)
		}
		code, body := p.rawUpload(tc.target, file{name: "a.txt", data: []byte("a")}, nil)
		if code != http.StatusAccepted {
			t.Fatalf("upload: %d %s", code, body)
		}
		id := p.decodeJobs(body)[0].ID
		deadline := time.Now().Add(30 * time.Second)
		for {
			j, err := p.jobs.Get(context.Background(), jobs.AllTenants(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status == jobs.StatusRetrying {
				wait := time.Until(*j.NextAttemptAt)
				if wait > tc.limit || wait < tc.limit-time.Minute {
					t.Errorf("%s: next attempt in %s, want the cap %s", tc.target, wait.Round(time.Second), tc.limit)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: job %s after 30s", tc.target, j.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
