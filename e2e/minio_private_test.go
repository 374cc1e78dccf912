package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// privateMinIO is a MinIO server process of the test's own, on a free
// loopback port with its data in a temporary folder: what a test needs
// when it must configure the server itself (notification targets are
// set when MinIO starts, so the shared one at 127.0.0.1:9000 cannot be
// used). It is killed when the test ends.
type privateMinIO struct {
	Endpoint string // host:port
	Client   *minio.Client
	out      *syncBuffer // the server's output, for failures
}

const privateMinIOUser, privateMinIOPassword = "ferrytest", "ferrytest-secret"

// findMinIO returns the minio binary on the PATH or in Go's bin
// directory, as scripts/stack.sh and ferry-chaos find it; "" if none.
func findMinIO() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		if p := filepath.Join(dir, "bin", "minio"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// startMinIO starts a private MinIO with env added to its environment
// (MINIO_* settings) and waits until it is ready. It skips the test when
// no minio binary is installed.
func startMinIO(t *testing.T, env ...string) *privateMinIO {
	t.Helper()
	bin := findMinIO()
	if bin == "" {
		t.Skip("no minio binary on the PATH or in $GOPATH/bin (scripts/stack.sh up installs one)")
	}
	addr := freeLoopbackAddr(t)
	m := &privateMinIO{Endpoint: addr, out: &syncBuffer{}}
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, t.TempDir())
	for _, kv := range os.Environ() { // the machine's MinIO settings are not this one's
		if !strings.HasPrefix(kv, "MINIO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "MINIO_ROOT_USER="+privateMinIOUser, "MINIO_ROOT_PASSWORD="+privateMinIOPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = m.out, m.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for !minioLive(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("minio on %s not ready after 60s:\n%s", addr, m.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(privateMinIOUser, privateMinIOPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	m.Client = c
	return m
}

// MakeBucket creates a bucket.
func (m *privateMinIO) MakeBucket(t *testing.T, name string) {
	t.Helper()
	if err := m.Client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v\n%s", name, err, m.out.String())
	}
}

func minioLive(addr string) bool {
	resp, err := http.Get("http://" + addr + "/minio/health/ready")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeLoopbackAddr returns 127.0.0.1:<a port free a moment ago>.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}
