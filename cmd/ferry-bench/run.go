package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one of the measurements.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, r *report) error
}

// longScenarios load a million jobs first: they get
// Sizes.LongScenarioDeadline instead of ScenarioDeadline.
var longScenarios = map[string]bool{"dashboard": true, "backlog": true, "documents": true}

var scenarios = []scenario{
	{"ingest", ingestScenario},
	{"e2e-small", func(ctx context.Context, e *env, r *report) error { return e2eScenario(ctx, e, r, false) }},
	{"e2e-large", func(ctx context.Context, e *env, r *report) error { return e2eScenario(ctx, e, r, true) }},
	{"scale", scaleScenario},
	{"memory", memoryScenario},
	{"status", statusScenario},
	{"latency", latencyScenario},
	{"dashboard", dashboardScenario},
	{"backlog", backlogScenario},
	{"sessions", sessionsScenario},
	{"documents", documentsScenario},
}

// run measures every scenario cfg asks for, prints the table and writes the
// report to cfg.Out.
func run(ctx context.Context, cfg Config) error {
	_, err := measure(ctx, &cfg)
	return err
}

func measure(ctx context.Context, cfg *Config) (*report, error) {
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close(ctx)
	rep := &report{}
	began := time.Now()
	for _, s := range scenarios {
		if !cfg.wants(s.name) {
			continue
		}
		cfg.progress("%s: start", s.name)
		t := time.Now()
		deadline := cfg.Sizes.ScenarioDeadline
		if longScenarios[s.name] {
			deadline = cfg.Sizes.LongScenarioDeadline
		}
		if d, ok := scenarioDeadlines[s.name]; ok {
			deadline = d(cfg.Sizes)
		}
		sctx, cancel := context.WithTimeout(ctx, deadline)
		err := s.run(sctx, e, rep)
		cancel()
		if err != nil {
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
		if err := e.emptyBucket(ctx); err != nil {
			return rep, err
		}
		cfg.progress("%s: done in %s", s.name, time.Since(t).Round(time.Second))
	}
	if err := e.sink.check(); err != nil {
		return rep, err
	}
	md := rep.markdown(header(ctx, cfg, e, time.Since(began)))
	fmt.Println(md)
	if cfg.Out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o750); err != nil {
			return rep, err
		}
		if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
			return rep, err
		}
		cfg.progress("results written to %s", cfg.Out)
	}
	return rep, nil
}

// header records when, where, with what and how the run was made.
func header(ctx context.Context, cfg *Config, e *env, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## ferry benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- command: `%s` (took %s)\n", cfg.Command, took.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %s memory, %s; load average at the end %s\n", runtime.NumCPU(), cpuModel(), memTotal(),
		runtime.GOOS+"/"+runtime.GOARCH, loadAvg())
	fmt.Fprintf(&b, "- versions: %s; PostgreSQL %s; MinIO %s; %s\n", runtime.Version(), postgresVersion(ctx, e), minioVersion(), moduleVersions())
	s := cfg.Sizes
	fmt.Fprintf(&b, "- settings: %d repetitions per figure (median, min–max); ingest %s files (%s); end to end %d × %s and %d × %s files, %d uploaders and %d delivery slots on both sides; memory %s vs %s file; status %d vs %d rows, %d requests per query and repetition; latency %d sequential 4 KiB uploads per repetition; documents %d vs %d\n",
		cfg.Reps, sizeName(s.IngestFile), ingestCounts(s), s.SmallJobs, sizeName(s.SmallFile), s.LargeJobs, sizeName(s.LargeFile),
		s.E2EConcurrency, s.E2EConcurrency, sizeName(s.BigFile), sizeName(s.RefFile), s.StatusLarge, s.StatusSmall, s.StatusQueries, s.LatencySamples, s.DocumentsLarge, s.DocumentsSmall)
	return b.String()
}

// loadAvg is the 1, 5 and 15 minute load averages: other work on the
// machine during the run shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func ingestCounts(s Sizes) string {
	var parts []string
	for _, c := range s.concurrencies() {
		parts = append(parts, fmt.Sprintf("%d files at concurrency %d", s.IngestFiles[c], c))
	}
	return strings.Join(parts, ", ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb); err != nil {
				return "unknown"
			}
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

func postgresVersion(ctx context.Context, e *env) string {
	conn, err := e.admin(ctx)
	if err != nil {
		return "unknown"
	}
	defer conn.Close(ctx)
	var v string
	if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) != nil {
		return "unknown"
	}
	return v
}

// minioVersion reads the module version of the minio binary on PATH or in
// GOBIN (scripts/stack.sh installs it with go install).
func minioVersion() string {
	bin, err := exec.LookPath("minio")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "minio")
	}
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/minio/minio" {
			return f[2]
		}
	}
	return "unknown"
}

func moduleVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	want := map[string]bool{"github.com/nats-io/nats-server/v2": true, "github.com/nats-io/nats.go": true,
		"github.com/minio/minio-go/v7": true, "github.com/jackc/pgx/v5": true}
	var parts []string
	for _, d := range bi.Deps {
		if want[d.Path] {
			parts = append(parts, strings.TrimPrefix(d.Path, "github.com/")+" "+d.Version)
		}
	}
	return strings.Join(parts, ", ")
}

// runParallel calls f(ctx, i) for i in [0, n) on conc goroutines and returns
// the wall time. The first error stops the rest.
func runParallel(ctx context.Context, conc, n int, f func(ctx context.Context, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if ctx.Err() != nil {
		return d, context.Cause(ctx)
	}
	return d, nil
}

// targetsYAML is a targets file with the loopback target under the given
// names, each with the given delivery slots (0: ferry's default).
func targetsYAML(sinkURL string, concurrency int, names ...string) string {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    kind: http\n    url: %s/ferry/%s\n    method: PUT\n    body: raw\n", n, sinkURL, n)
		if concurrency > 0 {
			fmt.Fprintf(&b, "    concurrency: %d\n", concurrency)
		}
	}
	return b.String()
}
