package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
)

// workerProcess is ferry worker run as a process of its own, for a test
// to kill with SIGKILL: it dies between two instructions, with nothing
// recorded, handed back or acknowledged.
type workerProcess struct {
	t   *testing.T
	env []string
	log string
	cmd *exec.Cmd
}

// startWorkerProcess runs ferry worker on p's database, queue and bucket,
// with the targets file targetsYAML and a lease of 2s.
func startWorkerProcess(t *testing.T, p *pipeline, natsURL, targetsYAML string) *workerProcess {
	t.Helper()
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsFile, []byte(targetsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := testenv.S3Config()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "FERRY_DATABASE_URL="+p.pool.Config().ConnString(), "FERRY_NATS_URL="+natsURL,
		"FERRY_S3_ENDPOINT="+s3.Endpoint, "FERRY_S3_ACCESS_KEY="+s3.AccessKey, "FERRY_S3_SECRET_KEY="+s3.SecretKey,
		"FERRY_S3_BUCKET="+p.objects.Bucket(), "FERRY_TARGETS="+targetsFile, "FERRY_DATA_DIR="+filepath.Join(dir, "data"),
		"FERRY_LEASE=2s", "FERRY_ACK_WAIT=5s", "FERRY_SHUTDOWN_GRACE=5s")
	w := &workerProcess{t: t, env: env, log: filepath.Join(dir, "worker.log")}
	w.start()
	return w
}

// start runs the process (again).
func (w *workerProcess) start() {
	w.t.Helper()
	f, err := os.OpenFile(w.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	w.cmd = exec.Command(ferryBinary(w.t), "worker")
	w.cmd.Env, w.cmd.Stdout, w.cmd.Stderr = w.env, f, f
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	cmd := w.cmd
	w.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// kill sends SIGKILL and waits for the process to be gone.
func (w *workerProcess) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait()
}

// logs returns the end of the process's log, for a failure message.
func (w *workerProcess) logs() string {
	b, _ := os.ReadFile(w.log)
	return string(b[max(0, len(b)-4000):])
}

// TestDocumentKindsWorkerKilled: per kind, a ferry worker process is
// killed -9 while the system has carried out the last step of a version
// (the first, or a later one) but not answered, and the next version was
// accepted meanwhile (it waits). Once the lease expired and a worker runs
// again, it finds what the killed one did (http: the ETag moved and the
// document's digest is the version's; Workfront: the document by its
// extRefID, the DocumentVersion by its search): each version is at the
// system once, in order.
func TestDocumentKindsWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry worker processes: builds the binary")
	}
	t.Parallel()
	// Workfront's first version ends with POST document (or its short
	// name docu), a later one with POST docv.
	wfDocument := func(r *http.Request) bool {
		seg := strings.ToLower(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
		return r.Method == http.MethodPost && (seg == "document" || seg == "docu")
	}
	cases := []struct {
		kind string
		// version is the version killed in flight (1 or 2); match its
		// last step's request (nil: the kind's later-version step).
		version int
		match   func(*http.Request) bool
	}{
		{kind: "http", version: 1},
		{kind: "http", version: 2},
		{kind: "workfront", version: 1, match: wfDocument},
		{kind: "workfront", version: 2},
		{kind: "4d", version: 2},
		{kind: "workfront-webhook", version: 2},
	}
	for _, tc := range cases {
		vk := versionKindOf(t, tc.kind)
		if tc.match == nil {
			tc.match = vk.last
		}
		t.Run(fmt.Sprintf("%s/v%d", tc.kind, tc.version), func(t *testing.T) {
			t.Parallel()
			killDuringVersion(t, vk, tc.version, tc.match)
		})
	}
}

// killDuringVersion delivers versions of one document, killing the worker
// process while version killed is at the system unanswered.
func killDuringVersion(t *testing.T, vk versionKind, killed int, match func(*http.Request) bool) {
	fake := vk.fake()
	h := &holdAnswer{next: fake, match: match, held: make(chan struct{}, 1)}
	nats := testenv.NATS(t)
	q, err := queue.Connect(nats.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	targetsYAML := kindTargets(t, vk, h)
	p := newPipeline(t, targetsYAML, pipelineOptions{noWorker: true, queue: q, installation: true})
	w := startWorkerProcess(t, p, nats.URL(), targetsYAML)
	datas := [][]byte{[]byte("killed v1"), []byte("killed v2"), []byte("killed v3")}[:killed+1]
	for _, d := range datas[:killed-1] {
		if j := p.deliverWithin(vk, d, time.Minute); j.Status != jobs.StatusSuccess {
			t.Fatalf("%q: %s %q\n%s", d, j.Status, j.LastError, w.logs())
		}
	}
	h.armed.Store(true)
	_, inFlight := p.sendDoc("dms", "kill.pdf", datas[killed-1], vk.params)
	select {
	case <-h.held:
	case <-time.After(time.Minute):
		t.Fatalf("version %d's last step never reached the system\n%s", killed, w.logs())
	}
	_, next := p.sendDoc("dms", "kill.pdf", datas[killed], vk.params)
	w.kill()
	w.start()
	final := p.waitFinal([]string{inFlight.ID, next.ID}, 90*time.Second)
	for _, id := range []string{inFlight.ID, next.ID} {
		if j := final[id]; j.Status != jobs.StatusSuccess {
			t.Fatalf("version %d: %s after %d attempts %q\n%s", j.Version, j.Status, j.Attempts, j.LastError, w.logs())
		}
	}
	wantVersions(t, fake, datas...)
	as, err := p.jobs.Attempts(t.Context(), jobs.AllTenants(), inFlight.ID)
	if err != nil || len(as) != 2 || as[0].Outcome != jobs.OutcomeAbandoned || as[1].Outcome != jobs.OutcomeSuccess {
		t.Fatalf("version %d's attempts: %+v %v, want one ABANDONED (the killed worker's), then one SUCCESS", killed, as, err)
	}
}

// deliverWithin sends a version of kill.pdf and waits for its job to end.
func (p *pipeline) deliverWithin(vk versionKind, data []byte, within time.Duration) jobs.Job {
	p.t.Helper()
	_, j := p.sendDoc("dms", "kill.pdf", data, vk.params)
	return p.waitFinal([]string{j.ID}, within)[j.ID]
}
