package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSyncMeasureRSS runs ferry sync --watch on a tree of
// FERRY_SYNC_MEASURE files against a server that accepts every upload at
// once, and reports the process's resident memory after the first pass
// and after a while of changes. Skipped unless the variable is set.
func TestSyncMeasureRSS(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_SYNC_MEASURE"))
	if n == 0 {
		t.Skip("FERRY_SYNC_MEASURE=N measures ferry sync --watch on N files")
	}
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%1000), fmt.Sprintf("f%06d.txt", i))
		if i < 1000 {
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var uploads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/documents":
			_, _ = io.WriteString(w, `{"documents":[]}`)
		case r.Method == http.MethodPost:
			k := uploads.Add(1)
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"jobs":[{"id":"j%d","version":1}]}`, k)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cmd := exec.Command(ferryBinary(t), "sync", dir, "--target", "t", "--watch", "--state", t.TempDir(), "--json")
	cmd.Env = append(os.Environ(), "FERRY_SERVER="+srv.URL, "FERRY_API_KEY=k")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start := time.Now()
	for uploads.Load() < int64(n) {
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("%d of %d uploaded", uploads.Load(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	first := time.Since(start)
	peak := rss(t, cmd.Process.Pid)
	for i := range 60 { // a minute of changes: 1 % of the files, a second apart
		for j := range n / 100 / 60 {
			k := (i*997 + j*101) % n
			p := filepath.Join(dir, fmt.Sprintf("d%03d", k%1000), fmt.Sprintf("f%06d.txt", k))
			_ = os.WriteFile(p, []byte(fmt.Sprintf("%d changed %d", k, i)), 0o644)
		}
		time.Sleep(time.Second)
		peak = max(peak, rss(t, cmd.Process.Pid))
	}
	t.Logf("%d files: first sync %s; RSS %d MiB after it, %d MiB peak over a minute of changes (%d uploads)",
		n, first.Round(time.Millisecond), rss(t, cmd.Process.Pid)>>20, peak>>20, uploads.Load())
}

// rss is the resident memory of the process pid, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
