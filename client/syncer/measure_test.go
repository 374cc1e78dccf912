package syncer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// TestMeasureTree measures the engine's own cost on a tree of
// FERRY_SYNC_MEASURE small files against a server that answers at once:
// the first sync against sha256sum over the same files, the second
// against a bare stat walk (find -printf). Skipped unless the variable is
// set.
func TestMeasureTree(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_SYNC_MEASURE"))
	if n == 0 {
		t.Skip("FERRY_SYNC_MEASURE=N measures a tree of N files")
	}
	reps, _ := strconv.Atoi(os.Getenv("FERRY_SYNC_REPS"))
	dir := t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%1000), fmt.Sprintf("f%06d.txt", i))
		if i < 1000 {
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("%01024d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ferry holds every file already (a new machine): the first sync
	// hashes everything and sends nothing.
	var docs apitypes.DocumentList
	for i := range n {
		h := sha256.Sum256([]byte(fmt.Sprintf("%01024d", i)))
		docs.Documents = append(docs.Documents, apitypes.Document{Key: fmt.Sprintf("d%03d/f%06d.txt", i%1000, i),
			Current: &apitypes.DocumentVersion{Version: 1, SHA256: hex.EncodeToString(h[:])}})
	}
	var uploads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			_ = json.NewEncoder(w).Encode(docs)
			return
		}
		k := uploads.Add(1)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"jobs":[{"id":"j%d","version":1}]}`, k)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "k", nil)
	src, _ := source.NewDir(dir, source.Rules{}.Skip)
	x, err := index.Open(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	eng, err := syncer.New(syncer.Options{Target: "t", MinAge: time.Nanosecond}, syncer.Deps{Client: c, Source: src, Index: x, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	shaTime := timeShell(t, dir, "find . -type f -print0 | xargs -0 -P"+strconv.Itoa(runtime.GOMAXPROCS(0))+" -n 1000 sha256sum > /dev/null")
	start := time.Now()
	s, err := eng.Once(context.Background())
	first := time.Since(start)
	if err != nil || s.Hashed != n || uploads.Load() != 0 {
		t.Fatalf("first: %v %+v", err, s)
	}
	// FERRY_SYNC_REPS: repeat the second sync and find, alternating (to
	// profile it, and to take the best of each under a noisy load).
	var s2 syncer.Summary
	second, findTime := time.Duration(1<<62), time.Duration(1<<62)
	for range max(1, reps) {
		findTime = min(findTime, timeShell(t, dir, "find . -printf '%s %T@\\n' > /dev/null"))
		start = time.Now()
		s2, err = eng.Once(context.Background())
		second = min(second, time.Since(start))
	}
	if err != nil || s2.Hashed != s.Hashed || uploads.Load() != 0 {
		t.Fatalf("second: %v %+v", err, s2)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d files: first sync (seeded, all hashed) %s, sha256sum (parallel) %s: %.2f× its speed; second %s, find %s (best of FERRY_SYNC_REPS): ratio %.2f; heap in use %d MiB",
		n, first.Round(time.Millisecond), shaTime.Round(time.Millisecond), shaTime.Seconds()/first.Seconds(), second.Round(time.Millisecond),
		findTime.Round(time.Millisecond), second.Seconds()/findTime.Seconds(), ms.HeapInuse>>20)
}

func timeShell(t *testing.T, dir, script string) time.Duration {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", script, err, out)
	}
	return time.Since(start)
}
