package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/apitypes"
	fakeblueworks "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	fakeworkfront "github.com/ferry-relay/ferry/internal/fakes/workfront"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets/targetstest"
	"github.com/ferry-relay/ferry/worker"
)

// peakHandler counts the requests it serves at once, each held a while so
// that concurrent deliveries overlap.
type peakHandler struct {
	next      http.Handler
	hold      time.Duration
	now, peak atomic.Int32
}

func (h *peakHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/_fake/") {
		n := h.now.Add(1)
		defer h.now.Add(-1)
		for old := h.peak.Load(); n > old && !h.peak.CompareAndSwap(old, n); old = h.peak.Load() {
		}
		time.Sleep(h.hold)
	}
	h.next.ServeHTTP(w, r)
}

// Two workfront targets on one instance share its ten concurrent requests,
// across two worker processes: with 30 files in flight the fake never
// serves more than 10 requests at once, and every file lands once.
func TestWorkfrontInstanceLimitSharedAcrossTargetsAndProcesses(t *testing.T) {
	fake := fakeworkfront.New(fakeworkfront.Options{MaxConcurrent: -1}) // count, never refuse
	peak := &peakHandler{next: fake, hold: 40 * time.Millisecond}
	srv := httptest.NewServer(peak)
	t.Cleanup(srv.Close)
	entry := func(name string) string {
		return fmt.Sprintf(`
  - name: %s
    kind: workfront
    concurrency: 16
    base_url: %s
    username: ferry@example.com
    password: ferry-password
    params: {objID: "%s", docObjCode: PROJ}`, name, srv.URL, fakeworkfront.DemoProjectID)
	}
	p := newPipeline(t, "targets:"+entry("wf-a")+entry("wf-b"), pipelineOptions{noWorker: true})
	var ids []string
	for i := range 30 {
		target := []string{"wf-a", "wf-b"}[i%2]
		for _, j := range p.upload(target, file{fmt.Sprintf("doc-%02d.pdf", i), targetstest.RandomBytes(20<<10, uint64(i+1))}) {
			ids = append(ids, j.ID)
		}
	}
	// Two processes, each with 16 slots per target: 64 deliveries could
	// run at once but for the instance's shared cap.
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	for id, j := range p.waitFinal(ids, 90*time.Second) {
		if j.Status != jobs.StatusSuccess {
			t.Errorf("job %s: %s %s", id, j.Status, j.LastError)
		}
	}
	if got := peak.peak.Load(); got > 10 || fake.MaxConcurrent() > 10 {
		t.Fatalf("the instance served %d requests at once (fake counted %d), its limit is 10", got, fake.MaxConcurrent())
	} else if got < 5 {
		t.Errorf("peak %d requests at once: the test did not load the instance", got)
	}
	if n := len(fake.Documents()); n != 30 {
		t.Errorf("%d documents, want 30", n)
	}
	var list apitypes.TargetList
	p.get("/v1/targets", &list)
	for _, tg := range list.Targets {
		if len(tg.Limits) != 1 || tg.Limits[0].Max != 10 || !strings.HasPrefix(tg.Limits[0].Group, "workfront-127.0.0.1") {
			t.Errorf("target %s shows limits %+v, want the instance's cap of 10", tg.Name, tg.Limits)
		}
	}
	t.Logf("peak concurrent requests at the instance: %d (cap 10)", peak.peak.Load())
}

// limit_group makes entries of any kind share one cap, max_in_flight.
func TestLimitGroupSharedByEntries(t *testing.T) {
	sinkSrv := &peakHandler{next: sink.New(sink.Options{}), hold: 50 * time.Millisecond}
	srv := httptest.NewServer(sinkSrv)
	t.Cleanup(srv.Close)
	var yaml strings.Builder
	yaml.WriteString("targets:")
	for _, name := range []string{"h1", "h2", "h3"} {
		fmt.Fprintf(&yaml, `
  - name: %s
    kind: http
    concurrency: 8
    limit_group: archive
    max_in_flight: 3
    url: %s/ok`, name, srv.URL)
	}
	p := newPipeline(t, yaml.String(), pipelineOptions{noWorker: true})
	var ids []string
	for i := range 24 {
		ids = append(ids, p.upload([]string{"h1", "h2", "h3"}[i%3], file{fmt.Sprintf("f%d", i), []byte("x")})[0].ID)
	}
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	for id, j := range p.waitFinal(ids, 60*time.Second) {
		if j.Status != jobs.StatusSuccess {
			t.Errorf("job %s: %s %s", id, j.Status, j.LastError)
		}
	}
	if got := sinkSrv.peak.Load(); got > 3 || got < 2 {
		t.Fatalf("peak %d requests at once for a limit_group of 3", got)
	}
}

// A Blueworks client secret refused for a while pauses the target: no job
// fails, GET /v1/targets says paused_credentials, and every job lands once
// the secret works again, by itself.
func TestCredentialsRefusedPausesTarget(t *testing.T) {
	fake, p := blueworksPipeline(t, `    max_attempts: 3
    credential_probe: 1s
    backoff: {initial: 100ms, max: 200ms}`, pipelineOptions{})
	// Refused until the pause has been seen (a fixed few seconds ran out
	// before the first delivery on a loaded machine), then accepted again.
	fake.RefuseCredentials(time.Minute)
	var ids []string
	for i := range 20 {
		for _, j := range p.upload("bw", file{fmt.Sprintf("f%02d.txt", i), []byte(fmt.Sprintf("file %d", i))}) {
			ids = append(ids, j.ID)
		}
	}
	paused := false
	deadline := time.Now().Add(30 * time.Second)
	for !paused && time.Now().Before(deadline) {
		var list apitypes.TargetList
		p.get("/v1/targets", &list)
		if tg := list.Targets[0]; tg.State == "paused_credentials" {
			paused = true
			if !strings.Contains(tg.Reason, "invalid_client") || tg.Since == nil {
				t.Errorf("paused target shows %+v", tg)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !paused {
		t.Fatal("the target never showed paused_credentials")
	}
	fake.RefuseCredentials(0)
	for id, j := range p.waitFinal(ids, 60*time.Second) {
		if j.Status != jobs.StatusSuccess {
			t.Errorf("job %s: %s %s", id, j.Status, j.LastError)
		}
		if j.Attempts > 3 {
			t.Errorf("job %s: %d attempts counted, the refusals must not count", id, j.Attempts)
		}
	}
	if n := len(fake.Documents()); n != 20 {
		t.Errorf("%d documents, want 20", n)
	}
	var list apitypes.TargetList
	p.get("/v1/targets", &list)
	if st := list.Targets[0].State; st != "ok" {
		t.Errorf("target %s after the refusal ended, want ok", st)
	}
}

// POST /v1/targets/{name}/resume probes a paused target at once.
func TestResumeProbesAtOnce(t *testing.T) {
	fake, p := blueworksPipeline(t, `    credential_probe: 1h`, pipelineOptions{})
	fake.RefuseCredentials(time.Minute) // until the test ends it below
	ids := []string{p.upload("bw", file{"a.txt", []byte("a")})[0].ID}
	var res apitypes.ResumeResult
	deadline := time.Now().Add(10 * time.Second)
	for !res.ProbeRequested && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if code := p.post("/v1/targets/bw/resume", &res); code != 200 && code != 202 {
			t.Fatalf("resume: %d", code)
		}
	}
	if !res.ProbeRequested || res.Target.State != "paused_credentials" {
		t.Fatalf("resume answered %+v", res)
	}
	fake.RefuseCredentials(0) // the refusal ends
	p.post("/v1/targets/bw/resume", &res)
	for id, j := range p.waitFinal(ids, 20*time.Second) {
		if j.Status != jobs.StatusSuccess {
			t.Errorf("job %s: %s %s (a probe every hour: only resume can have woken it)", id, j.Status, j.LastError)
		}
	}
}

// A lost FileUpload answer cannot be asked about without an administrator
// (ListFiles is refused): the repeat is counted and marked, and GET
// /v1/jobs?uncertain=true finds the job.
func TestUncertainRedeliveryMarked(t *testing.T) {
	fake, p := blueworksPipelineWith(t, fakeblueworks.Options{Users: []string{"uploader"}},
		`    backoff: {initial: 100ms, max: 200ms}`, pipelineOptions{})
	fake.LoseAnswer(fakeblueworks.StepUpload)
	lost := p.upload("bw", file{"lost.txt", []byte("lost answer")})[0].ID
	p.waitFinal([]string{lost}, 20*time.Second) // the fault is for lost's upload only
	sure := p.upload("bw", file{"sure.txt", []byte("no fault")})[0].ID
	for id, j := range p.waitFinal([]string{lost, sure}, 20*time.Second) {
		if j.Status != jobs.StatusSuccess {
			t.Fatalf("job %s: %s %s", id, j.Status, j.LastError)
		}
	}
	var list apitypes.JobList
	p.get("/v1/jobs?uncertain=true", &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != lost {
		t.Fatalf("uncertain jobs %+v, want only %s", list.Jobs, lost)
	}
	var as apitypes.AttemptList
	p.get("/v1/jobs/"+lost+"/attempts", &as)
	if n := len(as.Attempts); n != 2 || as.Attempts[1].Uncertain == "" || as.Attempts[0].Uncertain != "" {
		t.Fatalf("attempts %+v: want the second marked uncertain", as.Attempts)
	}
	code, metrics := p.raw("GET", "/metrics")
	if code != 200 || !strings.Contains(metrics, `ferry_uncertain_redeliveries_total{target="bw"}`) {
		t.Errorf("metric ferry_uncertain_redeliveries_total{target=\"bw\"} missing")
	}
}

// A stored file gone from storage fails its job at once, "stored file
// missing"; one whose bytes changed fails "stored file corrupted", and the
// target never gets the bad bytes whole. Neither counts against the
// target's health. The same holds with the recent-files memory of ferry
// serve: a file replaced or removed through the store is replaced or
// forgotten there too.
func TestStoredFileMissingOrCorrupted(t *testing.T) {
	for _, recent := range []int64{0, 8 << 20} {
		t.Run(fmt.Sprintf("recent-files memory %d", recent), func(t *testing.T) {
			fake, p := blueworksPipeline(t, "", pipelineOptions{noWorker: true, recentBytes: recent})
			ctx := context.Background()
			gone := p.upload("bw", file{"gone.txt", []byte("soon gone")})[0].ID
			bad := p.upload("bw", file{"bad.txt", []byte("original bytes")})[0].ID
			jg, _ := p.jobs.Get(ctx, jobs.AllTenants(), gone)
			jb, _ := p.jobs.Get(ctx, jobs.AllTenants(), bad)
			if err := p.objects.Remove(ctx, jg.ObjectKey); err != nil {
				t.Fatal(err)
			}
			tampered := []byte("tampered bytes")
			if _, err := p.objects.Put(ctx, jb.ObjectKey, bytes.NewReader(tampered), int64(len(tampered)), 1<<20, "text/plain"); err != nil {
				t.Fatal(err)
			}
			p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
			final := p.waitFinal([]string{gone, bad}, 20*time.Second)
			if j := final[gone]; j.Status != jobs.StatusFailed || !strings.Contains(j.LastError, "stored file missing") || j.Attempts != 1 {
				t.Errorf("missing file: %s after %d attempts: %q", j.Status, j.Attempts, j.LastError)
			}
			if j := final[bad]; j.Status != jobs.StatusFailed || !strings.Contains(j.LastError, "stored file corrupted") || j.Attempts != 1 {
				t.Errorf("corrupted file: %s after %d attempts: %q", j.Status, j.Attempts, j.LastError)
			}
			if n := len(fake.Documents()); n != 0 {
				t.Errorf("the target holds %d documents: a bad file went out", n)
			}
		})
	}
}

// With the recent-files memory of ferry serve, the worker delivers a small
// file it just stored from memory (proven here by deleting its object
// behind the store's back before the worker starts), the bytes checked
// against the record as ever; a file above storage.RecentFileMax is read
// from the bucket, so its deleted object fails the job.
func TestRecentFilesAreDeliveredFromMemory(t *testing.T) {
	fake, p := blueworksPipeline(t, "", pipelineOptions{noWorker: true, recentBytes: 8 << 20})
	ctx := context.Background()
	small := bytes.Repeat([]byte("small file "), 400)
	large := bytes.Repeat([]byte("L"), storage.RecentFileMax+10)
	up := p.upload("bw", file{"small.txt", small}, file{"large.bin", large})
	for _, j := range up {
		got, err := p.jobs.Get(ctx, jobs.AllTenants(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.objects.Client().RemoveObject(ctx, p.objects.Bucket(), got.ObjectKey, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	final := p.waitFinal([]string{up[0].ID, up[1].ID}, 20*time.Second)
	if j := final[up[0].ID]; j.Status != jobs.StatusSuccess || j.Attempts != 1 {
		t.Errorf("small file: %s after %d attempts: %q", j.Status, j.Attempts, j.LastError)
	}
	if j := final[up[1].ID]; j.Status != jobs.StatusFailed || !strings.Contains(j.LastError, "stored file missing") {
		t.Errorf("large file: %s after %d attempts: %q", j.Status, j.Attempts, j.LastError)
	}
	sum := sha256.Sum256(small)
	docs := fake.Documents()
	if len(docs) != 1 || docs[0].Name != "small.txt" || docs[0].Size != int64(len(small)) || docs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the target holds %+v, want small.txt, %d bytes, sha256 %x", docs, len(small), sum)
	}
}

// blueworksPipeline runs the pipeline against a fake Blueworks as target
// "bw"; settings are extra lines of its targets-file entry, indented.
func blueworksPipeline(t *testing.T, settings string, opts pipelineOptions) (*fakeblueworks.Server, *pipeline) {
	t.Helper()
	return blueworksPipelineWith(t, fakeblueworks.Options{}, settings, opts)
}

// blueworksPipelineWith is blueworksPipeline with a fake account
// configured by fo.
func blueworksPipelineWith(t *testing.T, fo fakeblueworks.Options, settings string, opts pipelineOptions) (*fakeblueworks.Server, *pipeline) {
	t.Helper()
	fake := fakeblueworks.New(fo)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	if settings != "" {
		settings += "\n"
	}
	p := newPipeline(t, fmt.Sprintf(`targets:
  - name: bw
    kind: blueworks
%s    base_url: %s
    client_id: ferry
    client_secret: ferry-secret
    params: {locationField: instance, ancestorId: "w1", parentId: "w1"}`, settings, srv.URL), opts)
	return fake, p
}
