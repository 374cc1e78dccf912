package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
)

// newKey creates an API key of tenant with role and returns it.
func (p *pipeline) newKey(name, tenant string, role apikeys.Role) string {
	p.t.Helper()
	k, _, err := p.keys.CreateKey(context.Background(), apikeys.Spec{Name: name, Tenant: tenant, Role: role})
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

// as sends method path (with an optional JSON body) with key and decodes
// the answer into out.
func (p *pipeline) as(key, method, path, body string, out any) int {
	p.t.Helper()
	var r *bytes.Reader
	if body != "" {
		r = bytes.NewReader([]byte(body))
	} else {
		r = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, p.api.URL+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return p.do(withKey(req, key), out)
}

// uploadAs uploads one small file to target with key and returns the
// status and the jobs accepted.
func (p *pipeline) uploadAs(key, target, name string) (int, []jobView) {
	p.t.Helper()
	var out struct{ Jobs []jobView }
	code := p.do(withKey(p.multipartRequest(map[string]string{"target": target}, file{name: name, data: []byte("hello " + name)}), key), &out)
	return code, out.Jobs
}

// failJobs marks jobs FAILED, as a target's final refusal would leave them.
func (p *pipeline) failJobs(ids ...string) {
	p.t.Helper()
	if _, err := p.pool.Exec(context.Background(), `UPDATE jobs SET status = 'FAILED', last_error = 'refused',
		finished_at = now() WHERE id = ANY($1::uuid[])`, ids); err != nil {
		p.t.Fatal(err)
	}
}

// TestTenantsSeeOnlyTheirOwn is the "must show", tried as a new
// user would over HTTP: key B gets 404 for key A's job and an empty list,
// and B's "retry all" touches none of A's jobs.
func TestTenantsSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: shared
    kind: http
    url: %[1]s/ok/shared
  - name: only-b
    kind: http
    url: %[1]s/ok/b
    tenants: [b]
`, base), pipelineOptions{noWorker: true})
	keyA := p.newKey("a-ops", "a", apikeys.RoleOperator)
	keyB := p.newKey("b-ops", "b", apikeys.RoleOperator)
	admin := p.newKey("root", "default", apikeys.RoleAdmin)

	code, up := p.uploadAs(keyA, "shared", "a1.txt")
	if code != http.StatusAccepted || len(up) != 1 {
		t.Fatalf("A's upload: %d", code)
	}
	jobA := up[0]
	if jobA.Tenant != "a" {
		t.Fatalf("A's job has tenant %q", jobA.Tenant)
	}
	_, up = p.uploadAs(keyA, "shared", "a2.txt")
	jobA2 := up[0]

	// B sees nothing of A's.
	var e apiError
	for _, path := range []string{"/v1/jobs/" + jobA.ID, "/v1/jobs/" + jobA.ID + "/attempts"} {
		if code := p.as(keyB, http.MethodGet, path, "", &e); code != http.StatusNotFound {
			t.Errorf("B GET %s: %d, want 404", path, code)
		}
	}
	for _, path := range []string{"/v1/jobs/" + jobA.ID + "/retry", "/v1/jobs/" + jobA.ID + "/cancel"} {
		if code := p.as(keyB, http.MethodPost, path, "", &e); code != http.StatusNotFound {
			t.Errorf("B POST %s: %d, want 404", path, code)
		}
	}
	var list struct{ Jobs []jobView }
	if code := p.as(keyB, http.MethodGet, "/v1/jobs", "", &list); code != http.StatusOK || len(list.Jobs) != 0 {
		t.Errorf("B's list: %d with %d jobs, want 200 and none", code, len(list.Jobs))
	}
	if code := p.as(keyB, http.MethodGet, "/v1/jobs?tenant=a", "", &e); code != http.StatusForbidden {
		t.Errorf("B asking for tenant a: %d, want 403", code)
	}
	if code := p.as(keyA, http.MethodGet, "/v1/jobs", "", &list); code != http.StatusOK || len(list.Jobs) != 2 {
		t.Errorf("A's list: %d with %d jobs, want 2", code, len(list.Jobs))
	}

	// B's bulk re-queue reaches none of A's FAILED jobs; A's reaches them.
	p.failJobs(jobA.ID, jobA2.ID)
	var rq struct{ Requeued int }
	if code := p.as(keyB, http.MethodPost, "/v1/jobs/retry?all=true", "", &rq); code != http.StatusOK || rq.Requeued != 0 {
		t.Fatalf("B's retry all: %d requeued %d, want 200 and 0", code, rq.Requeued)
	}
	for _, id := range []string{jobA.ID, jobA2.ID} {
		j, _ := p.jobs.Get(context.Background(), jobs.AllTenants(), id)
		if j.Status != jobs.StatusFailed {
			t.Fatalf("A's job %s is %s after B's retry all", id, j.Status)
		}
	}
	if code := p.as(keyA, http.MethodPost, "/v1/jobs/retry?all=true", "", &rq); code != http.StatusOK || rq.Requeued != 2 {
		t.Fatalf("A's retry all: %d requeued %d, want 2", code, rq.Requeued)
	}

	// A batch name is unique per tenant: A and B both have "q4", each its own.
	var b apitypes.Batch
	if code := p.as(keyA, http.MethodPost, "/v1/batches", `{"name":"q4","target":"shared","params":{"x":"a"}}`, &b); code != http.StatusCreated {
		t.Fatalf("A creates q4: %d", code)
	}
	if code := p.as(keyB, http.MethodPost, "/v1/batches", `{"name":"q4","target":"only-b"}`, &b); code != http.StatusCreated || b.Tenant != "b" {
		t.Fatalf("B creates q4: %d tenant %q", code, b.Tenant)
	}
	if code := p.as(keyB, http.MethodPost, "/v1/batches", `{"name":"a-only","target":"shared","tenant":"a"}`, &e); code != http.StatusForbidden {
		t.Errorf("B creating a batch in tenant a: %d, want 403", code)
	}
	var sum apitypes.BatchSummary
	if code := p.as(keyB, http.MethodGet, "/v1/batches/q4", "", &sum); code != http.StatusOK || sum.Target != "only-b" {
		t.Errorf("B's q4: %d target %q", code, sum.Target)
	}
	if code := p.as(keyA, http.MethodPost, "/v1/batches", `{"name":"a-secret","target":"shared"}`, &b); code != http.StatusCreated {
		t.Fatalf("A creates a-secret: %d", code)
	}
	for _, path := range []string{"/v1/batches/a-secret", "/v1/batches/a-secret/keys"} {
		if code := p.as(keyB, http.MethodGet, path, "", &e); code != http.StatusNotFound {
			t.Errorf("B GET %s: %d, want 404", path, code)
		}
	}
	var page apitypes.BatchPage
	if code := p.as(keyB, http.MethodGet, "/v1/batches", "", &page); code != http.StatusOK || len(page.Batches) != 1 || page.Batches[0].Tenant != "b" {
		t.Errorf("B's batches: %d %+v, want only its q4", code, page.Batches)
	}

	// A target limited to tenant b is unknown to A, and not listed.
	if code, _ := p.uploadAs(keyA, "only-b", "x.txt"); code != http.StatusUnprocessableEntity {
		t.Errorf("A uploading to only-b: %d, want 422", code)
	}
	var ts struct{ Targets []struct{ Name string } }
	p.as(keyA, http.MethodGet, "/v1/targets", "", &ts)
	if len(ts.Targets) != 1 || ts.Targets[0].Name != "shared" {
		t.Errorf("A's targets: %+v, want only shared", ts.Targets)
	}
	if code, _ := p.uploadAs(keyB, "only-b", "b.txt"); code != http.StatusAccepted {
		t.Errorf("B uploading to only-b: %d", code)
	}

	// An administrator sees every tenant, and the audit trail.
	var j jobView
	if code := p.as(admin, http.MethodGet, "/v1/jobs/"+jobA.ID, "", &j); code != http.StatusOK {
		t.Errorf("admin GET A's job: %d", code)
	}
	if code := p.as(admin, http.MethodGet, "/v1/jobs", "", &list); code != http.StatusOK || len(list.Jobs) != 3 {
		t.Errorf("admin's list: %d with %d jobs, want 3", code, len(list.Jobs))
	}
	if code := p.as(keyA, http.MethodGet, "/v1/audit", "", &e); code != http.StatusForbidden {
		t.Errorf("operator GET /v1/audit: %d, want 403", code)
	}
	var trail apitypes.AuditPage
	if code := p.as(admin, http.MethodGet, "/v1/audit?tenant=a", "", &trail); code != http.StatusOK {
		t.Fatalf("admin GET /v1/audit: %d", code)
	}
	actions := map[string]int{}
	for _, en := range trail.Entries {
		if en.Tenant != "a" || en.KeyName != "a-ops" {
			t.Errorf("audit entry of tenant a by %q/%q", en.Tenant, en.KeyName)
		}
		actions[en.Action]++
	}
	if actions[audit.ActionJobsRequeue] != 1 || actions[audit.ActionBatchCreate] != 2 {
		t.Errorf("tenant a's audit trail: %v, want one jobs.requeue and two batch.create", actions)
	}
}

// TestRolesLimitWhatAKeyDoes: an uploader uploads, reads, and retries one
// job, but re-queues nothing in bulk and administers nothing.
func TestRolesLimitWhatAKeyDoes(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: shared
    kind: http
    url: %s/ok/shared
`, base), pipelineOptions{noWorker: true})
	up := p.newKey("uploader", "default", apikeys.RoleUploader)
	code, js := p.uploadAs(up, "shared", "u.txt")
	if code != http.StatusAccepted {
		t.Fatalf("uploader's upload: %d", code)
	}
	var e apiError
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/jobs/" + js[0].ID, http.StatusOK},
		{http.MethodPost, "/v1/jobs/" + js[0].ID + "/cancel", http.StatusOK},
		{http.MethodPost, "/v1/jobs/retry?all=true", http.StatusForbidden},
		{http.MethodPost, "/v1/batches/x/retry", http.StatusForbidden},
		{http.MethodGet, "/v1/audit", http.StatusForbidden},
		{http.MethodGet, "/v1/apikeys", http.StatusForbidden},
	} {
		if code := p.as(up, c.method, c.path, "", &e); code != c.want {
			t.Errorf("uploader %s %s: %d, want %d (%s)", c.method, c.path, code, c.want, e.Error.Message)
		}
	}
	var who apitypes.Identity
	if code := p.as(up, http.MethodGet, "/v1/whoami", "", &who); code != http.StatusOK || who.Role != string(apikeys.RoleUploader) || who.Tenant != "default" {
		t.Errorf("whoami: %d %+v", code, who)
	}
}

// TestRevokedKeyRefusedWithinTwoSeconds: a revoked or expired key gets 401
// within 2 s, though it was just used (and so cached).
func TestRevokedKeyRefusedWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, "targets: []\n", pipelineOptions{noWorker: true})
	key := p.newKey("leaving", "default", apikeys.RoleOperator)
	admin := p.newKey("root", "default", apikeys.RoleAdmin)
	var list struct{ Jobs []jobView }
	if code := p.as(key, http.MethodGet, "/v1/jobs", "", &list); code != http.StatusOK {
		t.Fatalf("before revoking: %d", code)
	}
	var info apitypes.APIKey
	if code := p.as(admin, http.MethodPost, "/v1/apikeys/leaving/revoke", "", &info); code != http.StatusOK || info.RevokedAt == nil {
		t.Fatalf("revoke: %d %+v", code, info)
	}
	revoked := time.Now()
	refusedWithin(t, p, key, revoked)

	expiring, _, err := p.keys.CreateKey(context.Background(), apikeys.Spec{Name: "brief", TTL: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if code := p.as(expiring, http.MethodGet, "/v1/jobs", "", &list); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	refusedWithin(t, p, expiring, time.Now().Add(500*time.Millisecond))

	var trail apitypes.AuditPage
	p.as(admin, http.MethodGet, "/v1/audit?action="+audit.ActionKeyRevoke, "", &trail)
	if len(trail.Entries) != 1 || trail.Entries[0].Subject != "leaving" || trail.Entries[0].KeyName != "root" {
		t.Errorf("audit of the revocation: %+v", trail.Entries)
	}
}

// refusedWithin polls with key until it gets 401, failing if that takes
// more than 2 s from since.
func refusedWithin(t *testing.T, p *pipeline, key string, since time.Time) {
	t.Helper()
	for {
		req, _ := http.NewRequest(http.MethodGet, p.api.URL+"/v1/jobs", nil)
		resp, err := http.DefaultClient.Do(withKey(req, key))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			if d := time.Since(since); d > 2*time.Second {
				t.Fatalf("key refused only %s after it ended", d)
			}
			return
		}
		if time.Since(since) > 3*time.Second {
			t.Fatalf("key still accepted (%d) %s after it ended", resp.StatusCode, time.Since(since))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
