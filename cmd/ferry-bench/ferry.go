package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// ferryOpts says how to run one ferry process.
type ferryOpts struct {
	// role is "serve" (API, workers, sweeper, embedded NATS), "api" or
	// "worker".
	role string
	// targets is the targets file.
	targets string
	// natsURL is the NATS server of an "api" process.
	natsURL string
	// bin is the binary to run instead of the configured one.
	bin string
	// key is the API key of another process on the same database (one is
	// created when empty).
	key string
	// env are more variables for the process (tracing's, traced.go).
	env map[string]string
	// listen is the API's address (a free loopback port when empty).
	listen string
}

// ferryProc is a running ferry process with a database of its own.
type ferryProc struct {
	cmd       *exec.Cmd
	url       string
	key       string
	pool      *pgxpool.Pool
	logPath   string
	pprofAddr string
	exited    chan struct{}
	client    *http.Client
}

// startFerry runs ferry on the database of pool (migrated, with an API key
// created for the benchmark) and waits until it is ready.
func (e *env) startFerry(ctx context.Context, pool *pgxpool.Pool, dbURL string, o ferryOpts) (*ferryProc, error) {
	key := o.key
	if key == "" {
		// Key names are unique, and one run starts ferry several times on
		// the same database: a key of its own for each start.
		var err error
		if key, err = apikeys.NewStore(pool).Create(ctx, fmt.Sprintf("bench-%d-%d", os.Getpid(), e.starts.Add(1))); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(e.tmp, "ferry-")
	if err != nil {
		return nil, err
	}
	targetsPath := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsPath, []byte(o.targets), 0o600); err != nil {
		return nil, err
	}
	bin := cmp.Or(o.bin, e.cfg.FerryBin)
	p := &ferryProc{key: key, pool: pool, logPath: filepath.Join(dir, "ferry.log"), exited: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	vars := map[string]string{
		"FERRY_LISTEN":         cmp.Or(o.listen, "127.0.0.1:0"),
		"FERRY_DATABASE_URL":   dbURL,
		"FERRY_S3_ENDPOINT":    e.cfg.S3Endpoint,
		"FERRY_S3_ACCESS_KEY":  e.cfg.S3AccessKey,
		"FERRY_S3_SECRET_KEY":  e.cfg.S3SecretKey,
		"FERRY_S3_BUCKET":      e.cfg.Bucket,
		"FERRY_TARGETS":        targetsPath,
		"FERRY_DATA_DIR":       filepath.Join(dir, "data"),
		"FERRY_LOG_FORMAT":     "json",
		"FERRY_SHUTDOWN_GRACE": "5s",
		"FERRY_NATS_URL":       o.natsURL,
	}
	maps.Copy(vars, o.env)
	if e.prof != nil && o.bin == "" {
		bin = e.prof.bin
		if p.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		vars["FERRY_BENCH_PPROF"] = p.pprofAddr
	}
	p.cmd = exec.Command(bin, o.role)
	p.cmd.Env = childEnv(vars)
	// The child dies with the benchmark, whatever stops it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	addr := make(chan string, 1)
	go func() {
		defer logf.Close()
		scanLog(stderr, logf, addr, o.role == "worker")
	}()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// childEnv is this process's environment without FERRY_* variables, plus vars.
func childEnv(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		// No OTEL_* either: tracing is on only where a scenario says.
		if !strings.HasPrefix(kv, "FERRY_") && !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// scanLog copies ferry's log to w and sends the API address once logged.
func scanLog(r io.Reader, w io.Writer, addr chan<- string, worker bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = w.Write(append(line, '\n'))
		if sent {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		ready := "API listening"
		if worker {
			ready = "worker started" // a worker has no address: it is ready once it consumes
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == ready {
			addr <- rec.Addr
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (p *ferryProc) waitReady(ctx context.Context, addr <-chan string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case p.url = <-addr:
	case <-p.exited:
		return fmt.Errorf("ferry exited at start; see %s:\n%s", p.logPath, tail(p.logPath))
	case <-ctx.Done():
		return fmt.Errorf("ferry did not start listening: %w; see %s", ctx.Err(), p.logPath)
	}
	if p.url == "" {
		return nil // a worker
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
		if resp, err := p.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ferry not ready: %w; see %s", ctx.Err(), p.logPath)
		case <-p.exited:
			return fmt.Errorf("ferry exited at start; see %s:\n%s", p.logPath, tail(p.logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop ends ferry gracefully, or kills it after 20 seconds.
func (p *ferryProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.client.CloseIdleConnections()
}

func (p *ferryProc) pid() int { return p.cmd.Process.Pid }

// upload sends one file as a raw body and returns its job id.
func (p *ferryProc) upload(ctx context.Context, target, name string, body io.Reader, size int64) (string, error) {
	return p.uploadWith(ctx, url.Values{"target": {target}, "filename": {name}}, http.StatusAccepted, body, size)
}

// uploadWith sends one file as a raw body with the query q (target,
// filename, and document fields if any), wants the answer code want, and
// returns the one job id of the answer.
func (p *ferryProc) uploadWith(ctx context.Context, q url.Values, want int, body io.Reader, size int64) (string, error) {
	name := q.Get("filename")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/uploads?"+q.Encode(), body)
	if err != nil {
		return "", err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", name, err)
	}
	defer resp.Body.Close()
	var out struct {
		Jobs []struct {
			ID string `json:"id"`
		} `json:"jobs"`
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("upload %s: status %d, want %d: %s", name, resp.StatusCode, want, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("upload %s: unreadable answer: %w", name, err)
	}
	if len(out.Jobs) != 1 {
		return "", fmt.Errorf("upload %s: %d jobs in the answer, want 1", name, len(out.Jobs))
	}
	return out.Jobs[0].ID, nil
}

// get sends an API GET and returns the status code, reading the body.
func (p *ferryProc) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// waitSuccess waits until every job of ids is SUCCESS, polling Postgres
// every interval, and returns when it saw it. A FAILED or CANCELED job ends
// the wait with an error.
func (p *ferryProc) waitSuccess(ctx context.Context, ids []string, every time.Duration) (time.Time, error) {
	for {
		var ok, bad int
		err := p.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'SUCCESS'),
			count(*) FILTER (WHERE status IN ('FAILED', 'CANCELED')) FROM jobs WHERE id = ANY($1::uuid[])`, ids).Scan(&ok, &bad)
		now := time.Now()
		switch {
		case err != nil:
			return now, fmt.Errorf("job statuses: %w", err)
		case bad > 0:
			return now, fmt.Errorf("%d job(s) ended FAILED or CANCELED; see %s", bad, p.logPath)
		case ok == len(ids):
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("%d of %d jobs SUCCESS: %w", ok, len(ids), ctx.Err())
		case <-time.After(every):
		}
	}
}

// memory returns ferry's peak and current resident set, in bytes, from
// /proc/<pid>/status (VmHWM and VmRSS).
func memory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", line, err)
		}
		if name == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return hwm, rss, nil
}

// rssSampler reads a process's VmRSS every 20 ms and keeps the largest.
type rssSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	peak  int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if _, rss, err := memory(pid); err == nil {
				s.peak = max(s.peak, rss)
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.stopc)
	s.wg.Wait()
	return s.peak
}
