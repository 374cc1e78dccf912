package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// ferry worker has no API: with FERRY_METRICS_LISTEN it serves /healthz,
// /readyz and /metrics there, so a container runtime can probe it and
// Prometheus scrape its delivery metrics. Before, it served nothing.
func TestWorkerOpsListener(t *testing.T) {
	bin := buildFerry(t)
	_, dbURL := testenv.Postgres(t)
	nats := testenv.NATS(t)
	s3 := testenv.S3Config()
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsFile, []byte("targets:\n  - {name: archive, kind: http, url: \"http://127.0.0.1:1/\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	worker := exec.Command(bin, "worker")
	worker.Env = append(configCheckEnv(), "FERRY_DATABASE_URL="+dbURL, "FERRY_NATS_URL="+nats.URL(), "FERRY_TARGETS="+targetsFile,
		"FERRY_S3_ENDPOINT="+s3.Endpoint, "FERRY_S3_ACCESS_KEY="+s3.AccessKey, "FERRY_S3_SECRET_KEY="+s3.SecretKey,
		"FERRY_S3_BUCKET="+s3.Bucket, "FERRY_METRICS_LISTEN="+addr, "FERRY_METRICS_KEY=ops-key", "FERRY_SHUTDOWN_GRACE=2s")
	var logs bytes.Buffer
	worker.Stderr = &logs
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	get := func(path, key string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitUntil(t, 60*time.Second, func() bool { return get("/readyz", "") == http.StatusOK })
	for _, c := range []struct {
		path, key string
		want      int
	}{
		{"/healthz", "", 200}, {"/readyz", "", 200}, {"/metrics", "", 401}, {"/metrics", "ops-key", 200}, {"/v1/jobs", "", 404},
	} {
		if got := get(c.path, c.key); got != c.want {
			t.Errorf("GET %s (key %q): %d, want %d\n%s", c.path, c.key, got, c.want, logs.String())
		}
	}
}
