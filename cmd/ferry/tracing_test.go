package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// otlpReceiver is an OTLP/HTTP collector: it keeps every span it is sent,
// with the service.name of its resource.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []gotSpan
}

type gotSpan struct {
	service string
	*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &req)
	}
	if err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, err), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				o.spans = append(o.spans, gotSpan{service: service, Span: sp})
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of the trace that holds a span named name.
func (o *otlpReceiver) trace(name string) []gotSpan {
	o.mu.Lock()
	defer o.mu.Unlock()
	var id []byte
	for _, s := range o.spans {
		if s.GetName() == name {
			id = s.GetTraceId()
		}
	}
	var out []gotSpan
	for _, s := range o.spans {
		if id != nil && bytes.Equal(s.GetTraceId(), id) {
			out = append(out, s)
		}
	}
	return out
}

// TestTracesAcrossAPIAndWorker: one upload through `ferry api`, delivered
// by a separate `ferry worker` after one failed attempt, is one trace at
// an OTLP receiver: the API's upload spans, and two attempts of the
// worker's (each with its claim, step, request and finish), the target
// having received the trace's traceparent. No span holds the API key,
// the S3 secret, the file's name or its bytes.
func TestTracesAcrossAPIAndWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary")
	}
	bin := buildFerry(t)
	_, dbURL := testenv.Postgres(t)
	nats := testenv.NATS(t)
	s3 := testenv.S3Config()
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)
	target := sink.New(sink.Options{FlakyFailures: 1})
	var mu sync.Mutex
	var sent []string // the traceparents the target received
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("traceparent"))
		mu.Unlock()
		target.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	yaml := fmt.Sprintf("targets:\n  - {name: archive, kind: http, url: %q, backoff: {initial: 50ms, max: 100ms}}\n", ts.URL+"/flaky/")
	if err := os.WriteFile(targetsFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	env := configCheckEnv("FERRY_DATABASE_URL="+dbURL, "FERRY_NATS_URL="+nats.URL(), "FERRY_TARGETS="+targetsFile,
		"FERRY_S3_ENDPOINT="+s3.Endpoint, "FERRY_S3_ACCESS_KEY="+s3.AccessKey, "FERRY_S3_SECRET_KEY="+s3.SecretKey,
		"FERRY_S3_BUCKET="+s3.Bucket, "FERRY_LISTEN="+listen, "FERRY_SHUTDOWN_GRACE=5s",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=200")
	create := exec.Command(bin, "apikey", "create", "--name", "test")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := strings.TrimSpace(string(out))
	procs := map[string]*exec.Cmd{}
	logs := map[string]*bytes.Buffer{}
	for _, role := range []string{"api", "worker"} {
		cmd := exec.Command(bin, role)
		cmd.Env = env
		logs[role] = &bytes.Buffer{}
		cmd.Stderr = logs[role]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[role] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	base := "http://" + listen
	waitUntil(t, 60*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	const name, content = "Facture-confidentielle.pdf", "%PDF-1.7 ferry-file-bytes"
	id := uploadOne(t, base, key, name, content)
	var job struct {
		Status   string
		Attempts int
	}
	waitUntil(t, 60*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&job)
		return job.Status == "SUCCESS"
	})
	// SIGTERM flushes each process's spans.
	for role, cmd := range procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s exited with %v after SIGTERM\n%s", role, err, logs[role])
		}
	}
	checkTrace(t, recv.trace("upload"), job.Attempts)
	mu.Lock()
	defer mu.Unlock()
	tid := fmt.Sprintf("%x", recv.trace("upload")[0].GetTraceId())
	if len(sent) != 2 || !strings.Contains(sent[0], tid) || !strings.Contains(sent[1], tid) {
		t.Errorf("the target received traceparents %q, want two of trace %s", sent, tid)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	linked := false // the sweeper published the retry, linked to the trace
	for _, s := range recv.spans {
		for _, l := range s.GetLinks() {
			linked = linked || s.GetName() == "sweeper.publish_due" && fmt.Sprintf("%x", l.GetTraceId()) == tid
		}
		text := s.String()
		for _, secret := range []string{key, s3.SecretKey, name, content, "/flaky/"} {
			if strings.Contains(text, secret) {
				t.Errorf("span %s of %s holds %q", s.GetName(), s.service, secret)
			}
		}
	}
	if !linked {
		t.Error("no sweeper.publish_due span links to the file's trace")
	}
	if !strings.Contains(logs["worker"].String(), "trace_id="+tid) {
		t.Errorf("the worker's log lines of the delivery lack trace_id=%s:\n%s", tid, logs["worker"])
	}
}

// checkTrace checks the spans of one file's trace: the API's upload and
// its steps, and attempts attempts of the worker's, each whole.
func checkTrace(t *testing.T, spans []gotSpan, attempts int) {
	t.Helper()
	count := map[string]int{}
	for _, s := range spans {
		count[s.service+" "+s.GetName()]++
	}
	t.Logf("spans of the trace, by service and name: %v", count)
	if attempts != 2 {
		t.Errorf("job SUCCESS after %d attempts, want 2 (the target fails the first)", attempts)
	}
	want := map[string]int{
		"ferry-api upload": 1, "ferry-api upload.receive": 1, "ferry-api upload.store": 1,
		"ferry-api upload.record": 1, "ferry-api upload.enqueue": 1,
		"ferry-worker deliver": 2, "ferry-worker claim": 2, "ferry-worker step 1": 2,
		"ferry-worker POST": 2, "ferry-worker finish": 2,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("trace has %d spans %q, want %d (all: %v)", count[k], k, n, count)
		}
	}
}

// uploadOne uploads one file and returns its job's id.
func uploadOne(t *testing.T, base, key, name, content string) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("target", "archive")
	part, _ := w.CreateFormFile("file", name)
	_, _ = part.Write([]byte(content))
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var accepted struct{ Jobs []struct{ ID string } }
	_ = json.NewDecoder(resp.Body).Decode(&accepted)
	if resp.StatusCode != http.StatusAccepted || len(accepted.Jobs) != 1 {
		t.Fatalf("upload: %d %+v", resp.StatusCode, accepted)
	}
	return accepted.Jobs[0].ID
}
