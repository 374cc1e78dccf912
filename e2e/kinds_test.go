package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fakeblueworks "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	fakefourd "github.com/ferry-relay/ferry/internal/fakes/fourd"
	fakeworkfront "github.com/ferry-relay/ferry/internal/fakes/workfront"
	fakehook "github.com/ferry-relay/ferry/internal/fakes/workfronthook"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

// documentFake is what these tests need of a fake document system.
type documentFake interface {
	http.Handler
	targetstest.Fake
	Fail(step string, n, status int, retryAfter time.Duration)
}

// kindCase is one document system, wired as a real worker would use it.
type kindCase struct {
	kind string
	fake func() documentFake
	// settings is the target's YAML besides name, kind and policy; %s is
	// the fake's URL.
	settings string
	// refuse makes the fake refuse the next delivery for good.
	refuse func(documentFake)
	// refusal is a fragment of the error a refused job keeps.
	refusal string
}

var kindCases = []kindCase{
	{
		kind: "workfront-webhook",
		fake: func() documentFake { return fakehook.New(fakehook.Options{}) },
		settings: `base_url: %s
    api_key: ferry-demo-key
    params: {parentId: "folder-1"}`,
		refuse:  func(f documentFake) { f.Fail(fakehook.StepUploadInit, 1, http.StatusNotFound, 0) },
		refusal: "404",
	},
	{
		kind: "workfront",
		fake: func() documentFake { return fakeworkfront.New(fakeworkfront.Options{}) },
		settings: `base_url: %s
    username: ferry@example.com
    password: ferry-password
    params: {objID: "` + fakeworkfront.DemoProjectID + `", docObjCode: PROJ}`,
		refuse:  func(f documentFake) { f.Fail(fakeworkfront.StepDocument, 1, http.StatusForbidden, 0) },
		refusal: "403",
	},
	{
		kind: "4d",
		fake: func() documentFake { return fakefourd.New(fakefourd.Options{}) },
		settings: `base_url: %s
    dataclass: Invoices
    attribute: pdf`,
		refuse:  func(f documentFake) { f.Fail("update", 1, http.StatusForbidden, 0) },
		refusal: "403",
	},
	{
		kind: "blueworks",
		fake: func() documentFake { return fakeblueworks.New(fakeblueworks.Options{}) },
		settings: `base_url: %s
    client_id: ferry
    client_secret: ferry-secret
    params: {locationField: instance, ancestorId: "w1", parentId: "w1"}`,
		refuse: func(f documentFake) {
			_ = f.(*fakeblueworks.Server).FailUpload(1, "FAILED_DELETED")
		},
		refusal: "virus",
	},
}

// TestDocumentSystems runs real workers against each fake document system:
// files of mixed sizes arrive byte-identical; a failure at the last step
// resumes there on the next attempt, from the checkpoint kept in Postgres;
// expired credentials are renewed without failing the job; a permanent
// refusal ends FAILED after one attempt with the reason.
func TestDocumentSystems(t *testing.T) {
	t.Parallel()
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			t.Parallel()
			fake := kc.fake()
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: dms
    kind: %s
    backoff: {initial: 50ms, max: 200ms}
    max_attempts: 5
    %s
`, kc.kind, fmt.Sprintf(kc.settings, srv.URL)), pipelineOptions{})

			// Mixed sizes, with a failure of the last step on the first one.
			steps := fake.Steps()
			fake.Fail(steps[len(steps)-1], 1, http.StatusServiceUnavailable, 0)
			var files []file
			for i, n := range []int{0, 1, 4096, 300 << 10, 3 << 20} {
				files = append(files, file{fmt.Sprintf("Facture été %d.pdf", i), targetstest.RandomBytes(n, uint64(10+i))})
			}
			// One upload per file: 4D attaches each to its own entity.
			// The first one alone, so that the injected failure is its own.
			var all []string
			for i, f := range files {
				all = append(all, ids(p.uploadWith(map[string]string{"target": "dms", "param.key": fmt.Sprint(i + 1)}, f))...)
				if i == 0 {
					p.waitFinal(all, 30*time.Second)
				}
			}
			first := all[:1]
			final := p.waitFinal(all, time.Minute)

			docs := map[string]targetstest.Document{}
			for _, d := range fake.Documents() {
				docs[d.SHA256] = d
			}
			if len(fake.Documents()) != len(files) {
				t.Errorf("the system holds %d documents, want %d (one per file)", len(fake.Documents()), len(files))
			}
			for id, j := range final {
				d, ok := docs[j.SHA256]
				switch {
				case j.Status != jobs.StatusSuccess:
					t.Errorf("job %s %s after %d attempts: %s", id, j.Status, j.Attempts, j.LastError)
				case !ok || d.Size != j.Size:
					t.Errorf("job %s: %d bytes %s not found in the system", id, j.Size, j.SHA256)
				case j.RemoteID != d.RemoteID:
					t.Errorf("job %s: remote id %q, the system says %q", id, j.RemoteID, d.RemoteID)
				}
			}
			resumed := final[first[0]]
			if resumed.Attempts != 2 {
				t.Errorf("job failed at %s once: %d attempts, want 2", steps[len(steps)-1], resumed.Attempts)
			}

			// Expired credentials are renewed within the attempt.
			fake.ExpireCredentials()
			again := p.uploadWith(map[string]string{"target": "dms", "param.key": "50"}, file{"après expiration.txt", []byte("renewed")})
			j := p.waitFinal(ids(again), 30*time.Second)[again[0].ID]
			if j.Status != jobs.StatusSuccess || j.Attempts != 1 {
				t.Errorf("after credentials expired: %s after %d attempts (%s)", j.Status, j.Attempts, j.LastError)
			}

			// A permanent refusal fails the job after one attempt.
			kc.refuse(fake)
			refused := p.uploadWith(map[string]string{"target": "dms", "param.key": "51"}, file{"refusé.pdf", []byte("no")})
			j = p.waitFinal(ids(refused), 30*time.Second)[refused[0].ID]
			if j.Status != jobs.StatusFailed || j.Attempts != 1 || !strings.Contains(j.LastError, kc.refusal) {
				t.Errorf("refused job: %s after %d attempts, error %q; want FAILED after 1 mentioning %q", j.Status, j.Attempts, j.LastError, kc.refusal)
			}
			// Credentials never show in what ferry records.
			for _, id := range append(first, refused[0].ID) {
				as, _ := p.jobs.Attempts(context.Background(), jobs.AllTenants(), id)
				jb, _ := p.jobs.Get(context.Background(), jobs.AllTenants(), id)
				record := fmt.Sprint(as, jb.LastError, jb.Checkpoint)
				for _, secret := range []string{"ferry-password", "ferry-secret", "ferry-demo-key"} {
					if strings.Contains(record, secret) {
						t.Errorf("job %s records a credential", id)
					}
				}
			}
		})
	}
}

// TestMissingParamIsRefusedAtUpload checks that a job its target could never
// deliver is refused with 422 naming the parameter.
func TestMissingParamIsRefusedAtUpload(t *testing.T) {
	t.Parallel()
	fake := fakehook.New(fakehook.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: hook, kind: workfront-webhook, base_url: %q, api_key: ferry-demo-key}\n", srv.URL), pipelineOptions{noWorker: true})
	var e apiError
	code := p.do(p.multipartRequest(map[string]string{"target": "hook"}, file{"a.pdf", []byte("a")}), &e)
	if code != http.StatusUnprocessableEntity || e.Error.Code != "invalid_params" || !strings.Contains(e.Error.Message, "parentId") {
		t.Fatalf("got %d %+v; want 422 naming parentId", code, e.Error)
	}
	var ok struct{ Jobs []jobView }
	if code := p.do(p.multipartRequest(map[string]string{"target": "hook", "param.parentId": "f1"}, file{"a.pdf", []byte("a")}), &ok); code != http.StatusAccepted || ok.Jobs[0].Params["parentId"] != "f1" {
		t.Fatalf("with the param: %d %+v", code, ok.Jobs)
	}
}
