// Package e2e runs ferry's whole pipeline (API, queue, workers, sweeper) in
// the test process against real Postgres, NATS JetStream and MinIO, and fake
// target systems over real HTTP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/sweeper"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/kinds"
	"github.com/ferry-relay/ferry/ui"
	"github.com/ferry-relay/ferry/worker"
)

// pipeline is one ferry, all components real, in the test process.
type pipeline struct {
	t       *testing.T
	pool    *pgxpool.Pool
	jobs    *jobs.Store
	objects *storage.Store
	queue   *queue.Queue
	targets targets.Set
	api     *httptest.Server
	key     string
	keys    *apikeys.Store
	audit   *audit.Store
	log     *slog.Logger

	stopWorker context.CancelFunc
	workerDone chan struct{}
	workers    int
	deliveries *deliveries
}

// deliveries is /readyz's "deliveries" over the pipeline's workers, as
// ferry serve shows its worker's: down while one has paused its deliveries.
type deliveries struct {
	mu sync.Mutex
	ws []*worker.Worker
}

func (d *deliveries) Ping(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.ws {
		if err := w.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}

type pipelineOptions struct {
	maxUpload int64
	noWorker  bool
	bodyIdle  time.Duration
	rateLimit float64
	// maxUploads and reportWrite set the API's limits (defaults if zero).
	maxUploads  int
	reportWrite time.Duration
	// smallSendBuffers gives the API's connections 4 KiB socket send
	// buffers, so that a client that stops reading blocks the server's
	// writes after kilobytes instead of megabytes.
	smallSendBuffers bool
	// queue, if set, is the queue to use instead of a fresh one.
	queue *queue.Queue
	// recentBytes is the store's recent-files memory (as in ferry serve);
	// zero keeps none.
	recentBytes int64
	// storage, if set, adjusts the store's configuration (its endpoint).
	storage func(*storage.Config)
	// configure, if set, adjusts the API's configuration last.
	configure func(*api.Config)
	// installation names the queue's stream after the installation id of
	// the pipeline's database, as ferry serve does.
	installation bool
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newPipeline starts ferry with the targets file targetsYAML.
func newPipeline(t *testing.T, targetsYAML string, opts pipelineOptions) *pipeline {
	t.Helper()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	p := &pipeline{t: t, pool: pool, jobs: jobs.NewStore(pool), queue: opts.queue, log: testLogger(t), deliveries: &deliveries{}}
	p.objects = testenv.Storage(t, func(c *storage.Config) {
		c.RecentBytes = opts.recentBytes
		if opts.storage != nil {
			opts.storage(c)
		}
	})
	if p.queue == nil {
		p.queue = testenv.Queue(t)
	}
	if opts.installation {
		p.useInstallation(ctx)
	}
	p.queue.SetAckWait(5 * time.Second)
	cfgs, err := targets.ParseFile(strings.NewReader(targetsYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("targets: %v", err)
	}
	if p.targets, err = targets.Build(cfgs, kinds.All); err != nil {
		t.Fatalf("targets: %v", err)
	}
	keys := apikeys.NewStore(pool)
	if p.key, err = keys.Create(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	p.keys, p.audit = keys, audit.NewStore(pool)
	enq := enqueue.New(p.jobs, p.queue, p.log)
	cfg := api.Config{MaxUploadBytes: opts.maxUpload, BodyIdleTimeout: opts.bodyIdle, RateLimit: opts.rateLimit,
		MaxConcurrentUploads: opts.maxUploads, ReportWriteTimeout: opts.reportWrite}
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	srv := api.New(cfg, api.Deps{
		Jobs: p.jobs, Keys: ui.Keys(apikeys.NewCache(keys, 0)), KeyAdmin: keys, Audit: p.audit,
		Objects: p.objects, Enqueue: enq, Targets: p.targets,
		States: targetstate.NewStore(pool, "api"), Slots: limits.New(pool, "api", 0),
		Ready: map[string]api.Pinger{"postgres": pool, "nats": p.queue, "s3": p.objects, "deliveries": p.deliveries},
		Log:   p.log,
	})
	p.api = httptest.NewUnstartedServer(checkContract(t, srv.Handler()))
	if opts.smallSendBuffers {
		p.api.Listener = smallSendBuffers{p.api.Listener}
	}
	p.api.Start()
	t.Cleanup(p.api.Close)

	sw := sweeper.New(sweeper.Config{Interval: 100 * time.Millisecond, Grace: time.Second, ConsumerCheckEvery: time.Second},
		sweeper.Deps{Jobs: p.jobs, Enqueue: enq, Stream: p.queue, Consumers: p.queue.NewConsumerCheck(), Objects: p.objects, Log: p.log})
	swCtx, stopSweeper := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sw.Run(swCtx) })
	t.Cleanup(func() { stopSweeper(); wg.Wait() })
	if !opts.noWorker {
		p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
	}
	return p
}

// startWorker runs a worker until the test ends or stopWorker is called.
func (p *pipeline) startWorker(cfg worker.Config) {
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("worker-%d", p.workers)
	}
	p.workers++
	cfg = cfg.WithDefaults()
	if cfg.States == nil {
		cfg.States = targetstate.NewStore(p.pool, cfg.ID)
	}
	if cfg.Limits == nil {
		cfg.Limits = limits.New(p.pool, cfg.ID, cfg.Lease)
	}
	w := worker.New(cfg, p.jobs, p.objects, p.queue, p.targets, p.log)
	p.deliveries.mu.Lock()
	p.deliveries.ws = append(p.deliveries.ws, w)
	p.deliveries.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	p.stopWorker, p.workerDone = cancel, done
	p.t.Cleanup(func() { cancel(); <-done })
}

// jobView is a job as the API returns it.
type jobView = apitypes.Job

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request with the API key and decodes the JSON answer into out.
func (p *pipeline) do(req *http.Request, out any) int {
	p.t.Helper()
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		p.t.Fatalf("%s %s: content type %q, want JSON", req.Method, req.URL.Path, ct)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			p.t.Fatalf("%s %s: decoding answer: %v", req.Method, req.URL.Path, err)
		}
	}
	return resp.StatusCode
}

func (p *pipeline) get(path string, out any) int {
	req, _ := http.NewRequest(http.MethodGet, p.api.URL+path, nil)
	return p.do(req, out)
}

func (p *pipeline) post(path string, out any) int {
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+path, nil)
	return p.do(req, out)
}

// file is a file to upload.
type file struct {
	name string
	data []byte
}

// multipartRequest builds a multipart upload of files with fields.
func (p *pipeline) multipartRequest(fields map[string]string, files ...file) *http.Request {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for _, f := range files {
		part, _ := w.CreateFormFile("file", f.name)
		_, _ = part.Write(f.data)
	}
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return req
}

// upload sends files to target and returns the accepted jobs.
func (p *pipeline) upload(target string, files ...file) []jobView {
	p.t.Helper()
	return p.uploadWith(map[string]string{"target": target}, files...)
}

// uploadWith sends files with form fields and returns the accepted jobs.
func (p *pipeline) uploadWith(fields map[string]string, files ...file) []jobView {
	p.t.Helper()
	var out struct{ Jobs []jobView }
	var e apiError
	req := p.multipartRequest(fields, files...)
	resp, err := http.DefaultClient.Do(withKey(req, p.key))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		_ = json.NewDecoder(resp.Body).Decode(&e)
		p.t.Fatalf("upload: status %d: %s", resp.StatusCode, e.Error.Message)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatal(err)
	}
	return out.Jobs
}

func withKey(req *http.Request, key string) *http.Request {
	req.Header.Set("Authorization", "Bearer "+key)
	return req
}

// rawUpload sends one file as a raw body.
func (p *pipeline) rawUpload(target string, f file, query url.Values) (int, []byte) {
	p.t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("target", target)
	query.Set("filename", f.name)
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads?"+query.Encode(), bytes.NewReader(f.data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFinal waits until every job is final and returns them.
func (p *pipeline) waitFinal(ids []string, within time.Duration) map[string]jobs.Job {
	p.t.Helper()
	deadline := time.Now().Add(within)
	out := map[string]jobs.Job{}
	for {
		pending := 0
		for _, id := range ids {
			if j, ok := out[id]; ok && j.Status.Final() {
				continue
			}
			j, err := p.jobs.Get(context.Background(), jobs.AllTenants(), id)
			if err != nil {
				p.t.Fatalf("job %s: %v", id, err)
			}
			out[id] = j
			if !j.Status.Final() {
				pending++
			}
		}
		if pending == 0 {
			return out
		}
		if time.Now().After(deadline) {
			var sample []string
			for _, j := range out {
				if !j.Status.Final() && len(sample) < 5 {
					sample = append(sample, fmt.Sprintf("%s %s attempts=%d err=%q", j.ID, j.Status, j.Attempts, j.LastError))
				}
			}
			p.t.Fatalf("%d of %d jobs not final after %s: %v", pending, len(ids), within, sample)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ids(js []jobView) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}
