package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
)

// profileHook is compiled into cmd/ferry, through `go build -overlay`, for
// profiling runs only: the checkout is not changed. With FERRY_BENCH_PPROF
// set, it serves net/http/pprof and /bench/cpu/start|stop (which write a CPU
// profile to a file) on that loopback address, on the default mux, which
// ferry's API does not use.
const profileHook = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("FERRY_BENCH_PPROF")
	if addr == "" {
		return
	}
	var mu sync.Mutex
	var f *os.File
	http.HandleFunc("/bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if f, err = os.Create(r.URL.Query().Get("file")); err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("/bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		pprof.StopCPUProfile()
		if f != nil {
			f.Close()
			f = nil
		}
	})
	go func() { _ = http.ListenAndServe(addr, nil) }()
}
`

// profiler records CPU profiles of ferry (a build with profileHook) and of
// this process (the naive pipeline, the raw clients and the target).
type profiler struct {
	dir string
	bin string
}

func newProfiler(ctx context.Context, cfg *Config, tmp string) (*profiler, error) {
	if err := os.MkdirAll(cfg.ProfileDir, 0o750); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	modDir := filepath.Dir(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("profiling builds ferry from source: run from the ferry checkout: %w", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "go.mod") {
		return nil, errors.New("profiling builds ferry from source: run from the ferry checkout")
	}
	hook := filepath.Join(tmp, "benchprof.go")
	if err := os.WriteFile(hook, []byte(profileHook), 0o600); err != nil {
		return nil, err
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(modDir, "cmd", "ferry", "zz_benchprof.go"): hook}})
	overlayPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o600); err != nil {
		return nil, err
	}
	p := &profiler{dir: cfg.ProfileDir, bin: filepath.Join(tmp, "ferry-pprof")}
	build := exec.CommandContext(ctx, "go", "build", "-overlay", overlayPath, "-o", p.bin, "./cmd/ferry")
	build.Dir = modDir
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build ferry with pprof: %w\n%s", err, out)
	}
	return p, nil
}

// start begins CPU profiles of ferry (when proc is not nil) and of this
// process, named for the scenario; the returned function stops them.
func (p *profiler) start(name string, proc *ferryProc) (stop func()) {
	if p == nil {
		return func() {}
	}
	self, err := os.Create(filepath.Join(p.dir, name+".bench.pprof"))
	if err == nil && pprof.StartCPUProfile(self) != nil {
		self.Close()
		self = nil
	}
	if proc != nil && proc.pprofAddr != "" {
		file := filepath.Join(p.dir, name+".ferry.pprof")
		hookCall(proc.pprofAddr, "/bench/cpu/start?file="+url.QueryEscape(file))
	}
	return func() {
		if proc != nil && proc.pprofAddr != "" {
			hookCall(proc.pprofAddr, "/bench/cpu/stop")
		}
		if self != nil {
			pprof.StopCPUProfile()
			self.Close()
		}
	}
}

// heap saves ferry's heap profile (live objects at the last GC, and
// allocations since start).
func (p *profiler) heap(name string, proc *ferryProc) {
	if p == nil || proc.pprofAddr == "" {
		return
	}
	resp, err := http.Get("http://" + proc.pprofAddr + "/debug/pprof/heap")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(p.dir, name+".ferry.heap.pprof"))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

func hookCall(addr, path string) {
	resp, err := http.Get("http://" + addr + path)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
