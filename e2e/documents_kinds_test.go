package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	fakeblueworks "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	fakefourd "github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	fakeworkfront "github.com/ferry-relay/ferry/internal/fakes/workfront"
	fakehook "github.com/ferry-relay/ferry/internal/fakes/workfronthook"
	"github.com/ferry-relay/ferry/jobs"
)

// Documents with versions (issue 21) end to end, per kind: each
// connector's versions through the real pipeline (API, Postgres, NATS,
// MinIO, workers) to its fake over HTTP.

// versionedFake is what these tests need of a fake that keeps versions.
type versionedFake interface {
	http.Handler
	// DocumentVersions maps each remote document to the SHA-256 of its
	// versions, oldest first; a deleted document is absent.
	DocumentVersions() map[string][]string
	// LoseAnswer carries out the next request of step and drops its answer.
	LoseAnswer(step string)
}

// sinkDocs shows the sink's document paths as versioned documents.
type sinkDocs struct{ *sink.Server }

func (s sinkDocs) DocumentVersions() map[string][]string {
	out := map[string][]string{}
	for path, versions := range s.Resources() {
		for _, v := range versions {
			out[path] = append(out[path], v.SHA256)
		}
	}
	return out
}

// blueworksDocs shows Blueworks' attachments (versions: append) as the
// versions of one document: the item they are attached to.
type blueworksDocs struct{ *fakeblueworks.Server }

func (b blueworksDocs) DocumentVersions() map[string][]string {
	out := map[string][]string{}
	for _, a := range b.Attachments() {
		out[a.Location] = append(out[a.Location], a.SHA256)
	}
	return out
}

// versionKind is a kind that delivers versions, wired as a worker uses it.
type versionKind struct {
	kind string
	fake func() versionedFake
	// settings is the target's YAML besides name, kind and backoff; %s is
	// the fake's URL.
	settings string
	// params are the upload's parameters.
	params map[string]string
	// deletes: the kind delivers deletes (else the API refuses them).
	deletes bool
	// versionSteps are the steps of a version after the first, deleteSteps
	// those of a delete, as LoseAnswer takes them.
	versionSteps, deleteSteps []string
	// last matches the request of a later version's last step.
	last func(r *http.Request) bool
	// check, if set, looks at the fake after v1 and v2 were delivered.
	check func(t *testing.T, f versionedFake, v1, v2 []byte)
}

var versionKinds = []versionKind{
	{
		kind:     "http",
		fake:     func() versionedFake { return sinkDocs{sink.New(sink.Options{})} },
		settings: "url: %s/docs/{document}\n    versions: put",
		deletes:  true, versionSteps: []string{sink.StepPut}, deleteSteps: []string{sink.StepDelete},
		last: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, sink.DocumentsPath)
		},
	},
	{
		kind: "workfront",
		fake: func() versionedFake { return fakeworkfront.New(fakeworkfront.Options{}) },
		settings: `base_url: %s
    username: ferry@example.com
    password: ferry-password
    params: {objID: "` + fakeworkfront.DemoProjectID + `", docObjCode: PROJ}`,
		deletes:      true,
		versionSteps: []string{fakeworkfront.StepUpload, fakeworkfront.StepDocv},
		deleteSteps:  []string{fakeworkfront.StepDelete},
		last: func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(strings.ToLower(r.URL.Path), "/docv")
		},
		check: func(t *testing.T, f versionedFake, _, _ []byte) {
			docs := f.(*fakeworkfront.Server).StoredDocuments()
			if len(docs) != 1 || len(docs[0].Versions) != 2 || docs[0].CurrentVersionID != docs[0].Versions[1].ID {
				t.Errorf("Workfront holds %+v, want one document with two DocumentVersions, the second current", docs)
			}
		},
	},
	{
		kind: "4d",
		fake: func() versionedFake { return fakefourd.New(fakefourd.Options{}) },
		settings: `base_url: %s
    dataclass: Invoices
    attribute: pdf`,
		params:       map[string]string{"key": "7"},
		versionSteps: []string{fakefourd.StepUpload, fakefourd.StepUpdate},
		last:         func(r *http.Request) bool { return r.URL.Query().Get("$method") == "update" },
		check: func(t *testing.T, f versionedFake, _, v2 []byte) {
			e, ok := f.(*fakefourd.Server).Entity("Invoices", "7")
			if !ok || len(e.Files) != 1 || e.Files["pdf"].SHA256 != sum(v2) {
				t.Errorf("entity 7 holds %+v, want v2's bytes in pdf", e.Files)
			}
			if docs := f.(*fakefourd.Server).Documents(); len(docs) != 1 {
				t.Errorf("4D holds %d files, want 1 (one entity)", len(docs))
			}
		},
	},
	{
		kind: "workfront-webhook",
		fake: func() versionedFake { return fakehook.New(fakehook.Options{}) },
		settings: `base_url: %s
    api_key: ferry-demo-key
    params: {parentId: "folder-1"}`,
		versionSteps: []string{fakehook.StepUploadInit, fakehook.StepUpload},
		last:         func(r *http.Request) bool { return r.URL.Path == "/upload" },
		check: func(t *testing.T, f versionedFake, _, _ []byte) {
			files := f.(*fakehook.Server).Files()
			if len(files) != 1 || files[0].DocumentID == "" || len(files[0].Versions) != 2 ||
				files[0].Versions[0].VersionID == "" || files[0].Versions[0].VersionID == files[0].Versions[1].VersionID {
				t.Errorf("provider holds %+v, want one documentId with two documentVersionIds", files)
			}
		},
	},
	{
		kind: "blueworks",
		fake: func() versionedFake { return blueworksDocs{fakeblueworks.New(fakeblueworks.Options{})} },
		settings: `base_url: %s
    client_id: ferry
    client_secret: ferry-secret
    versions: append
    params: {locationField: instance, ancestorId: "w1", parentId: "w1"}`,
		versionSteps: []string{fakeblueworks.StepUpload},
	},
}

// versionKindOf returns the versionKind of kind.
func versionKindOf(t *testing.T, kind string) versionKind {
	t.Helper()
	for _, vk := range versionKinds {
		if vk.kind == kind {
			return vk
		}
	}
	t.Fatalf("no versionKind %s", kind)
	return versionKind{}
}

// kindPipeline starts a pipeline with one target "dms" of kind vk to h.
func kindPipeline(t *testing.T, vk versionKind, h http.Handler, opts pipelineOptions) *pipeline {
	t.Helper()
	return newPipeline(t, kindTargets(t, vk, h), opts)
}

// kindTargets serves h and returns the targets file of one target "dms"
// of kind vk to it.
func kindTargets(t *testing.T, vk versionKind, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return fmt.Sprintf(`
targets:
  - name: dms
    kind: %s
    backoff: {initial: 50ms, max: 200ms}
    max_attempts: 5
    %s
`, vk.kind, fmt.Sprintf(vk.settings, srv.URL))
}

// sendDoc uploads data as a version of key at target, its SHA-256
// declared, and returns the answer's status and job.
func (p *pipeline) sendDoc(target, key string, data []byte, params map[string]string) (int, jobView) {
	p.t.Helper()
	fields := map[string]string{"target": target, "document": key, "sha256": sum(data)}
	for k, v := range params {
		fields["param."+k] = v
	}
	var out apitypes.UploadResult
	code := p.do(p.multipartRequest(fields, file{name: "report.pdf", data: data}), &out)
	if (code != http.StatusAccepted && code != http.StatusOK) || len(out.Jobs) != 1 {
		p.t.Fatalf("version of %s at %s: status %d, %d jobs", key, target, code, len(out.Jobs))
	}
	return code, out.Jobs[0]
}

// deliver sends a version and waits for its job to end; it returns the job.
func (p *pipeline) deliver(target, key string, data []byte, params map[string]string) jobs.Job {
	p.t.Helper()
	_, j := p.sendDoc(target, key, data, params)
	return p.waitFinal([]string{j.ID}, 30*time.Second)[j.ID]
}

// deleteDoc records a delete of key at target and returns the status and
// the answer's error (for a refusal) or job.
func (p *pipeline) deleteDoc(target, key string) (int, apiError, jobView) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, p.api.URL+"/v1/documents?target="+url.QueryEscape(target)+"&key="+url.QueryEscape(key), nil)
	resp, err := http.DefaultClient.Do(withKey(req, p.key))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	var j jobView
	if resp.StatusCode >= 400 {
		_ = jsonDecode(resp, &e)
	} else {
		_ = jsonDecode(resp, &j)
	}
	return resp.StatusCode, e, j
}

// wantVersions fails unless the fake holds exactly one document whose
// versions are the SHA-256 of datas, in order.
func wantVersions(t *testing.T, f versionedFake, datas ...[]byte) {
	t.Helper()
	var want []string
	for _, d := range datas {
		want = append(want, sum(d)[:8])
	}
	got := f.DocumentVersions()
	if len(got) != 1 {
		t.Fatalf("the fake holds %d documents %v, want one with versions %v", len(got), short(got), want)
	}
	for _, shas := range short(got) {
		if !slices.Equal(shas, want) {
			t.Fatalf("the document's versions are %v, want %v", shas, want)
		}
	}
}

func short(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, shas := range m {
		for _, s := range shas {
			out[k] = append(out[k], s[:min(8, len(s))])
		}
	}
	return out
}

// TestDocumentKindsVersions: per kind, v1; the same content again (no
// new job); v2 → one remote document with two versions; a delete → the
// document is gone (or, where the system has no delete, 422 naming the
// kind).
func TestDocumentKindsVersions(t *testing.T) {
	t.Parallel()
	for _, vk := range versionKinds {
		t.Run(vk.kind, func(t *testing.T) {
			t.Parallel()
			fake := vk.fake()
			p := kindPipeline(t, vk, fake, pipelineOptions{})
			v1, v2 := []byte("version one of the report"), []byte("version two of the report")
			_, j1 := p.sendDoc("dms", "reports/été 1.pdf", v1, vk.params)
			if j := p.waitFinal([]string{j1.ID}, 30*time.Second)[j1.ID]; j.Status != jobs.StatusSuccess {
				t.Fatalf("v1: %s %q", j.Status, j.LastError)
			}
			if code, again := p.sendDoc("dms", "reports/été 1.pdf", v1, vk.params); code != http.StatusOK || again.ID != j1.ID {
				t.Fatalf("same content again: %d job %s, want 200 with v1's job %s", code, again.ID, j1.ID)
			}
			if j := p.deliver("dms", "reports/été 1.pdf", v2, vk.params); j.Status != jobs.StatusSuccess || j.Version != 2 {
				t.Fatalf("v2: %s version %d %q", j.Status, j.Version, j.LastError)
			}
			wantVersions(t, fake, v1, v2)
			if vk.check != nil {
				vk.check(t, fake, v1, v2)
			}
			var n int
			if err := p.pool.QueryRow(t.Context(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 2 {
				t.Fatalf("%d jobs recorded (%v), want 2", n, err)
			}
			code, e, del := p.deleteDoc("dms", "reports/été 1.pdf")
			if !vk.deletes {
				if code != http.StatusUnprocessableEntity || e.Error.Code != "delete_unsupported" || !strings.Contains(e.Error.Message, vk.kind) {
					t.Fatalf("delete on %s: %d %+v, want 422 delete_unsupported naming the kind", vk.kind, code, e)
				}
				return
			}
			if code != http.StatusAccepted {
				t.Fatalf("delete: %d %+v", code, e)
			}
			if j := p.waitFinal([]string{del.ID}, 30*time.Second)[del.ID]; j.Status != jobs.StatusSuccess {
				t.Fatalf("delete: %s %q", j.Status, j.LastError)
			}
			if got := fake.DocumentVersions(); len(got) != 0 {
				t.Fatalf("after the delete the fake holds %v", short(got))
			}
			var doc apitypes.Document
			if code := p.get("/v1/documents/"+j1.Document, &doc); code != http.StatusOK || doc.State != "deleted" {
				t.Fatalf("document after the delete: %d %+v", code, doc)
			}
			// A new version of the deleted key starts a new remote document.
			v4 := []byte("version four, after the delete")
			if j := p.deliver("dms", "reports/été 1.pdf", v4, vk.params); j.Status != jobs.StatusSuccess || j.Version != 4 {
				t.Fatalf("v4 after the delete: %s version %d %q", j.Status, j.Version, j.LastError)
			}
			wantVersions(t, fake, v4)
		})
	}
}

// TestDocumentKindsLostAnswer: the answer to a step of a later version
// (or of a delete) is lost; the retry finds what the step did: no
// duplicate version at the fake.
func TestDocumentKindsLostAnswer(t *testing.T) {
	t.Parallel()
	for _, vk := range versionKinds {
		steps := append(slices.Clone(vk.versionSteps), vk.deleteSteps...)
		for _, step := range steps {
			t.Run(vk.kind+"/"+step, func(t *testing.T) {
				t.Parallel()
				fake := vk.fake()
				p := kindPipeline(t, vk, fake, pipelineOptions{})
				v1, v2 := []byte("lost answer v1"), []byte("lost answer v2")
				if j := p.deliver("dms", "lost.pdf", v1, vk.params); j.Status != jobs.StatusSuccess {
					t.Fatalf("v1: %s %q", j.Status, j.LastError)
				}
				isDelete := slices.Contains(vk.deleteSteps, step)
				if !isDelete {
					fake.LoseAnswer(step)
				}
				j := p.deliver("dms", "lost.pdf", v2, vk.params)
				if j.Status != jobs.StatusSuccess {
					t.Fatalf("v2 after a lost answer at %s: %s after %d attempts %q", step, j.Status, j.Attempts, j.LastError)
				}
				wantVersions(t, fake, v1, v2)
				if !isDelete {
					if j.Attempts < 2 {
						t.Fatalf("v2: %d attempt, want a retry after the lost answer", j.Attempts)
					}
					return
				}
				fake.LoseAnswer(step)
				code, e, del := p.deleteDoc("dms", "lost.pdf")
				if code != http.StatusAccepted {
					t.Fatalf("delete: %d %+v", code, e)
				}
				if j := p.waitFinal([]string{del.ID}, 30*time.Second)[del.ID]; j.Status != jobs.StatusSuccess || j.Attempts < 2 {
					t.Fatalf("delete after a lost answer: %s after %d attempts %q", j.Status, j.Attempts, j.LastError)
				}
				if got := fake.DocumentVersions(); len(got) != 0 {
					t.Fatalf("after the delete the fake holds %v", short(got))
				}
			})
		}
	}
}

// TestDocumentKindsHTTPConflict: with versions: put, a document changed at
// the sink behind ferry's back fails the next version (on_conflict
// default), or is replaced (on_conflict: overwrite).
func TestDocumentKindsHTTPConflict(t *testing.T) {
	t.Parallel()
	s := sink.New(sink.Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: strict, kind: http, url: "%[1]s/docs/{document}", versions: put, backoff: {initial: 50ms, max: 200ms}}
  - {name: loose, kind: http, url: "%[1]s/docs/loose-{document}", versions: put, on_conflict: overwrite, backoff: {initial: 50ms, max: 200ms}}
`, srv.URL), pipelineOptions{})
	for _, target := range []string{"strict", "loose"} {
		if j := p.deliver(target, "c.pdf", []byte("ferry's v1"), nil); j.Status != jobs.StatusSuccess {
			t.Fatalf("%s v1: %s %q", target, j.Status, j.LastError)
		}
	}
	s.SetDocument(sink.DocumentsPath+"c.pdf", []byte("someone else's"))
	s.SetDocument(sink.DocumentsPath+"loose-c.pdf", []byte("someone else's"))
	j := p.deliver("strict", "c.pdf", []byte("ferry's v2"), nil)
	if j.Status != jobs.StatusFailed || j.Attempts != 1 || !strings.Contains(j.LastError, "conflict: target changed since version 1") {
		t.Fatalf("strict v2: %s after %d attempts %q, want FAILED: conflict: target changed since version 1", j.Status, j.Attempts, j.LastError)
	}
	if j := p.deliver("loose", "c.pdf", []byte("ferry's v2"), nil); j.Status != jobs.StatusSuccess {
		t.Fatalf("loose v2: %s %q", j.Status, j.LastError)
	}
	res := s.Resources()
	strict, loose := res[sink.DocumentsPath+"c.pdf"], res[sink.DocumentsPath+"loose-c.pdf"]
	if len(strict) != 2 || strict[1].SHA256 != sum([]byte("someone else's")) {
		t.Fatalf("strict: the sink's document %+v, want theirs kept", strict)
	}
	if len(loose) != 3 || loose[2].SHA256 != sum([]byte("ferry's v2")) {
		t.Fatalf("loose: the sink's document %+v, want ferry's v2 over theirs", loose)
	}
}

// TestDocumentKindsBlueworksRefuse: Blueworks has no versions; by default
// (versions: refuse) a second version fails with a reason naming the way
// out, and nothing more is attached.
func TestDocumentKindsBlueworksRefuse(t *testing.T) {
	t.Parallel()
	vk := versionKindOf(t, "blueworks")
	vk.settings = strings.Replace(vk.settings, "\n    versions: append", "", 1)
	fake := vk.fake()
	p := kindPipeline(t, vk, fake, pipelineOptions{})
	if j := p.deliver("dms", "bw.pdf", []byte("bw v1"), nil); j.Status != jobs.StatusSuccess {
		t.Fatalf("v1: %s %q", j.Status, j.LastError)
	}
	j := p.deliver("dms", "bw.pdf", []byte("bw v2"), nil)
	if j.Status != jobs.StatusFailed || j.Attempts > 1 || !strings.Contains(j.LastError, "versions: append") {
		t.Fatalf("v2: %s after %d attempts %q, want FAILED naming versions: append", j.Status, j.Attempts, j.LastError)
	}
	wantVersions(t, fake, []byte("bw v1"))
}

// TestDocumentKinds4DStaleStamp: the entity was saved at 4D after v1 (its
// __STAMP moved): v2 still updates the same entity, with the current stamp.
func TestDocumentKinds4DStaleStamp(t *testing.T) {
	t.Parallel()
	vk := versionKindOf(t, "4d")
	fake := vk.fake()
	p := kindPipeline(t, vk, fake, pipelineOptions{})
	v1, v2 := []byte("4d v1"), []byte("4d v2")
	if j := p.deliver("dms", "inv.pdf", v1, vk.params); j.Status != jobs.StatusSuccess {
		t.Fatalf("v1: %s %q", j.Status, j.LastError)
	}
	if !fake.(*fakefourd.Server).Touch("Invoices", "7") {
		t.Fatal("entity 7 not found")
	}
	if j := p.deliver("dms", "inv.pdf", v2, vk.params); j.Status != jobs.StatusSuccess {
		t.Fatalf("v2 after the entity was saved: %s %q", j.Status, j.LastError)
	}
	wantVersions(t, fake, v1, v2)
	vk.check(t, fake, v1, v2)
}
