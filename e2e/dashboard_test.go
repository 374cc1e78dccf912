package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

// TestDashboardFigures checks the routes behind the dashboard on a real
// pipeline: failures grouped by reason, re-queue of exactly one group, the
// batch's throughput, the targets' activity, and the jobs list's filename
// filter.
func TestDashboardFigures(t *testing.T) {
	t.Parallel()
	p, _, ids := failingBatch(t, "dash")
	p.waitFinal(ids, 30*time.Second)

	var groups apitypes.FailureGroups
	if code := p.get("/v1/batches/dash/failures", &groups); code != 200 || len(groups.Groups) != 2 {
		t.Fatalf("failures: %d %+v", code, groups)
	}
	bad := groups.Groups[0]
	if bad.Count != 4 || !strings.Contains(bad.Group, `"…"`) || !strings.Contains(bad.Example, "bad-") || groups.Groups[1].Count != 2 {
		t.Fatalf("groups: %+v", groups.Groups)
	}
	var rq apitypes.RequeueResult
	if code := p.do(p.jsonRequest("POST", "/v1/batches/dash/retry", apitypes.BatchRetryRequest{ErrorGroup: &bad.Group}), &rq); code != 200 || rq.Requeued != 4 {
		t.Fatalf("retry the group: %d %+v", code, rq)
	}

	var tp apitypes.Throughput
	if code := p.get("/v1/batches/dash/throughput", &tp); code != 200 || len(tp.Points) == 0 {
		t.Fatalf("throughput: %d %+v", code, tp)
	}
	var act apitypes.Activity
	if code := p.get("/v1/activity", &act); code != 200 || len(act.Targets) != 1 || act.Targets[0].Delivered != 3 {
		t.Fatalf("activity: %d %+v", code, act)
	}
	var list apitypes.JobList
	if code := p.get("/v1/jobs?filename="+url.QueryEscape("invoice-1"), &list); code != 200 || len(list.Jobs) != 1 || list.Jobs[0].Filename != "Invoice-1.pdf" {
		t.Fatalf("filename filter: %d %+v", code, list)
	}
}

// pickyTarget is a document system that refuses files whose content
// holds "bad" (naming the file, HTTP 422) or "busy" (HTTP 403), until it
// is fixed.
type pickyTarget struct {
	*httptest.Server
	fixed atomic.Bool
}

func newPickyTarget(t *testing.T) *pickyTarget {
	pt := &pickyTarget{}
	pt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case pt.fixed.Load():
			w.WriteHeader(http.StatusCreated)
		case strings.Contains(string(b), "bad"):
			http.Error(w, fmt.Sprintf("file %q refused", strings.TrimSpace(string(b))), http.StatusUnprocessableEntity)
		case strings.Contains(string(b), "busy"):
			http.Error(w, "quota exceeded", http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(pt.Close)
	return pt
}

// failingBatch uploads nine files in batch to a picky target: four are
// refused for one reason, two for another, three delivered.
func failingBatch(t *testing.T, batch string) (*pipeline, *pickyTarget, []string) {
	pt := newPickyTarget(t)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: dms, kind: http, url: %q, max_attempts: 1}
`, pt.URL), pipelineOptions{})
	var ids []string
	for i := range 9 {
		body := fmt.Sprintf("good-%d", i)
		switch {
		case i < 4:
			body = fmt.Sprintf("bad-%d", i)
		case i < 6:
			body = fmt.Sprintf("busy-%d", i)
		}
		f := file{name: fmt.Sprintf("Invoice-%d.pdf", i), data: []byte(body)}
		for _, j := range p.uploadWith(map[string]string{"target": "dms", "batch": batch}, f) {
			ids = append(ids, j.ID)
		}
	}
	return p, pt, ids
}
