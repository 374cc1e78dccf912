package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// syncEvent is one JSON line of `ferry sync --json`: an event, or the
// summary (event "summary") with the engine's counts.
type syncEvent struct {
	Time        time.Time `json:"time"`
	Event       string    `json:"event"`
	Path        string    `json:"path"`
	Job         string    `json:"job"`
	Message     string    `json:"message"`
	Tracked     int       `json:"tracked"`
	Pending     int       `json:"pending"`
	Accepted    int       `json:"accepted"`
	Unchanged   int       `json:"unchanged"`
	Refused     int       `json:"refused"`
	Hashed      int       `json:"hashed"`
	HashedBytes int64     `json:"hashed_bytes"`
	Unsettled   int       `json:"unsettled"`
}

// syncProc is a running `ferry sync --json` process.
type syncProc struct {
	cmd     *exec.Cmd
	started time.Time
	logPath string
	// pprofAddr is the profile hook's address (profiling runs only).
	pprofAddr string
	exited    chan struct{}
	// ended is when the process was seen to exit; err its exit error.
	ended time.Time
	err   error
}

// startSync runs `ferry sync` on the benchmark's tree against ferry p,
// with the state in state, plus args. Every JSON line read from its
// standard output goes to on (from one goroutine), with the time it was
// read.
func (s *syncBench) startSync(name string, on func(ev syncEvent, read time.Time), args ...string) (*syncProc, error) {
	e := s.e
	bin := e.cfg.FerryBin
	vars := map[string]string{"FERRY_API_KEY": s.p.key}
	sp := &syncProc{logPath: filepath.Join(e.tmp, "sync-"+name+".log"), exited: make(chan struct{})}
	if e.prof != nil {
		bin = e.prof.bin
		var err error
		if sp.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		vars["FERRY_BENCH_PPROF"] = sp.pprofAddr
	}
	full := append([]string{"sync", s.dir, "--target", syncTarget, "--server", s.p.url, "--state", s.state, "--json"}, args...)
	sp.cmd = exec.Command(bin, full...)
	sp.cmd.Env = childEnv(vars)
	sp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(sp.logPath)
	if err != nil {
		return nil, err
	}
	sp.cmd.Stderr = logf
	stdout, err := sp.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	sp.started = time.Now()
	if err := sp.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start ferry sync: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			read := time.Now()
			var ev syncEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && on != nil {
				on(ev, read)
			}
		}
		sp.err = sp.cmd.Wait()
		sp.ended = time.Now()
		logf.Close()
		close(sp.exited)
	}()
	return sp, nil
}

// wait waits for the process to exit and returns its exit error.
func (sp *syncProc) wait(ctx context.Context) error {
	select {
	case <-sp.exited:
		if sp.err != nil {
			return fmt.Errorf("ferry sync: %w; see %s:\n%s", sp.err, sp.logPath, tail(sp.logPath))
		}
		return nil
	case <-ctx.Done():
		_ = sp.cmd.Process.Kill()
		<-sp.exited
		return fmt.Errorf("ferry sync did not end: %w; see %s", ctx.Err(), sp.logPath)
	}
}

// stop ends a --watch process with SIGTERM (SIGKILL after 20 s).
func (sp *syncProc) stop() {
	_ = sp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sp.exited:
	case <-time.After(20 * time.Second):
		_ = sp.cmd.Process.Kill()
		<-sp.exited
	}
}

// profile starts a CPU profile of the process (profiling runs only),
// retrying while its hook is not listening yet; the returned function
// stops it.
func (sp *syncProc) profile(e *env, name string) (stop func()) {
	if e.prof == nil || sp.pprofAddr == "" {
		return func() {}
	}
	file := filepath.Join(e.prof.dir, name+".ferry.pprof")
	for range 200 {
		resp, err := http.Get("http://" + sp.pprofAddr + "/bench/cpu/start?file=" + url.QueryEscape(file))
		if err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() { hookCall(sp.pprofAddr, "/bench/cpu/stop") }
}

// heap saves the process's heap profile (profiling runs only).
func (sp *syncProc) heap(e *env, name string) {
	if e.prof == nil || sp.pprofAddr == "" {
		return
	}
	e.prof.heap(name, &ferryProc{pprofAddr: sp.pprofAddr})
}

// summaryOf checks a one-shot sync's summary.
func summaryOf(sum *syncEvent) (syncEvent, error) {
	if sum == nil {
		return syncEvent{}, errors.New("ferry sync wrote no summary")
	}
	return *sum, nil
}

// jobStatus returns the status of job id through the API.
func (s *syncBench) jobStatus(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.p.url+"/v1/jobs/"+id, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.p.key)
	resp, err := s.p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /v1/jobs/%s: status %d", id, resp.StatusCode)
	}
	var j struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return "", fmt.Errorf("GET /v1/jobs/%s: %w", id, err)
	}
	return j.Status, nil
}
