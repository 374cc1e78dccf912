package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-relay/ferry/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs every measurement with tiny sizes against a real ferry
// process, Postgres, MinIO and NATS, so that `make bench` keeps working.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ferry processes")
	}
	// The backlog case loads a million jobs: make bench only; sync has a
	// smoke test of its own (sync_test.go).
	cfg := smokeConfig(t, "smoke", "go test ./bench",
		slices.DeleteFunc(slices.Clone(scenarioNames), func(s string) bool { return s == "backlog" || s == "sync" }))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := measure(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ingest 1 MiB files, concurrency 1", "ingest 1 MiB files, concurrency 8",
		"end to end 4 KiB files", "end to end 64 KiB files", "scaling: end to end 4 KiB files, 1 API + 1 worker", "peak RSS",
		"status GET /v1/jobs/{id} p50", "status GET /v1/jobs?status=FAILED", "upload started → job SUCCESS, idle, p50",
		"dashboard overview /ui/ p95", "dashboard batch page p95", "dashboard job page p95",
		"end to end 4 KiB files, a document key on every upload", "unchanged re-send with declared SHA-256",
		"documents GET /v1/documents?target=…&limit=100 p95", "documents GET /v1/documents?target=…&limit=100&cursor=", "documents GET /v1/documents/{id} p95"}
	for _, w := range want {
		found := false
		for _, r := range rep.rows {
			if !strings.HasPrefix(r.Figure, w) {
				continue
			}
			found = true
			if r.Ferry.N != 1 || r.Ferry.Med <= 0 || r.Raw.N != 1 || r.Raw.Med <= 0 || r.Ratio.N != 1 {
				t.Errorf("%s: ferry %+v, limit %+v, ratio %+v: want one positive value each", r.Figure, r.Ferry, r.Raw, r.Ratio)
			}
		}
		if !found {
			t.Errorf("no figure %q in the report", w)
		}
	}
	out, err := os.ReadFile(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "| figure | ferry | raw limit | ratio | target | met? |") {
		t.Errorf("results file lacks the table:\n%s", out)
	}
}

// ferryBinary builds cmd/ferry for the test (with the race detector when
// the test has it, so that the build cache of `go test -race` serves it),
// or uses FERRY_BENCH_FERRY.
func ferryBinary(t *testing.T) string {
	if bin := os.Getenv("FERRY_BENCH_FERRY"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/ferry-relay/ferry/cmd/ferry")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ferry: %v\n%s", err, out)
	}
	return bin
}

func removeBucket(t *testing.T, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, tr, err := newS3(&cfg)
	if err != nil {
		t.Log(err)
		return
	}
	defer tr.CloseIdleConnections()
	if err := c.RemoveBucket(ctx, cfg.Bucket); err != nil {
		t.Logf("remove bucket %s: %v", cfg.Bucket, err)
	}
}

// TestProfileHookParses checks the source compiled into ferry for
// profiling runs (building it here would cost a whole non-race build).
func TestProfileHookParses(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "zz_benchprof.go", profileHook, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name.Name != "main" {
		t.Errorf("package %s, want main", f.Name.Name)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// smokeConfig is the configuration of a smoke run of the scenarios only,
// with tiny sizes, a database and a bucket of its own (removed at the end)
// named after name.
func smokeConfig(t *testing.T, name, command string, only []string) Config {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	s3 := testenv.S3Config()
	cfg := Config{
		FerryBin:    ferryBinary(t),
		Out:         filepath.Join(t.TempDir(), "latest.md"),
		Reps:        1,
		DatabaseURL: testenv.DatabaseURL(),
		DBName:      "ferry_bench_" + name + "_" + hex.EncodeToString(suffix[:]),
		S3Endpoint:  s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey,
		Bucket:   "ferry-bench-" + name + "-" + hex.EncodeToString(suffix[:]),
		Sizes:    SmokeSizes(),
		Only:     only,
		Progress: testWriter{t},
		Command:  command,
	}
	t.Cleanup(func() { removeBucket(t, cfg) })
	return cfg
}
