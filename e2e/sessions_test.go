package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// writeRandomFile writes size pseudo-random bytes to path as a stream
// (never held in memory) and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [32]byte
	key[0] = byte(seed)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8(key), size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sessionPipeline is ferry delivering to a sink that hashes what it gets.
func sessionPipeline(t *testing.T) (*pipeline, *sink.Server) {
	s, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: big
    kind: http
    url: %s/ok/big
    method: PUT
    timeout: 10m
`, base), pipelineOptions{maxUpload: 8 << 30})
	return p, s
}

// A large file goes through ferry push in parts, in parallel, and the
// target receives the same SHA-256. The full suite sends 3 GiB; -short
// sends 300 MiB.
func TestPushLargeFileInParts(t *testing.T) {
	t.Parallel()
	size := int64(3 << 30)
	if testing.Short() {
		size = 300 << 20
	}
	p, s := sessionPipeline(t)
	dir := t.TempDir()
	want := writeRandomFile(t, filepath.Join(dir, "scan.tif"), size, 7)
	res, err := push.Run(testenv.Context(t), p.client(), push.Options{Paths: []string{dir}, Target: "big",
		Batch: "large", Concurrency: 1, ParallelParts: 4, Wait: true, PollInterval: 200 * time.Millisecond})
	if err != nil || res.Uploaded != 1 {
		t.Fatalf("push: %+v, %v", res, err)
	}
	docs := s.Documents()
	if len(docs) != 1 || docs[0].SHA256 != want || docs[0].Size != size {
		t.Fatalf("the target got %+v; want one file of %d bytes with SHA-256 %s", docs, size, want)
	}
	var parts, readBack int64
	if err := p.pool.QueryRow(testenv.Context(t), `SELECT parts, bytes_received FROM upload_sessions`).Scan(&parts, &readBack); err != nil {
		t.Fatal(err)
	}
	if parts < 2 || readBack != size {
		t.Errorf("session of %d parts took %d bytes; want several parts and every byte once", parts, readBack)
	}
}

// ferry push killed -9 at about half of a large file: the same command
// again finds the session on the server (no local state) and sends only
// what is missing, at most the parts that were in flight again.
func TestPushKilledMidSessionResumes(t *testing.T) {
	t.Parallel()
	bin := ferryBinary(t)
	p, s := sessionPipeline(t)
	dir := t.TempDir()
	const size = 512 << 20
	want := writeRandomFile(t, filepath.Join(dir, "video.mp4"), size, 9)
	args := []string{"push", dir, "--target", "big", "--batch", "resume", "--parallel-parts", "4", "--progress", "none"}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FERRY_SERVER="+p.api.URL, "FERRY_API_KEY="+p.key)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	received := func() int64 {
		var n int64
		_ = p.pool.QueryRow(context.Background(), `SELECT coalesce(sum(bytes_received), 0) FROM upload_sessions`).Scan(&n)
		return n
	}
	deadline := time.Now().Add(3 * time.Minute)
	for received() < size/2 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the push never reached half the file:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	before := received()

	again := exec.Command(bin, append(args, "--wait", "--poll-interval", "200ms")...)
	again.Env = cmd.Env
	if b, err := again.CombinedOutput(); err != nil || !strings.Contains(string(b), "1 SUCCESS") {
		t.Fatalf("push again: %v\n%s", err, b)
	}
	total := received()
	const partSize, parallel = 16 << 20, 4
	if total > size+parallel*partSize {
		t.Errorf("%d bytes received in all (%d before the kill); want at most the file (%d) and %d parts again",
			total, before, size, parallel)
	}
	docs := s.Documents()
	if len(docs) != 1 || docs[0].SHA256 != want {
		t.Fatalf("the target got %+v, want one file with SHA-256 %s", docs, want)
	}
	t.Logf("sent %d of %d bytes before the kill, %d in all (%.2fx the file)", before, size, total, float64(total)/size)
}
