package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/push"
	fakeblueworks "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

// treeFile is a file of a generated tree.
type treeFile struct {
	path string // relative, slash-separated
	size int
	sha  string
}

// makeTree writes n files under dir: nested folders, non-ASCII names, a
// few empty files, and `over` files larger than limit. Every file's
// content is distinct.
func makeTree(t *testing.T, dir string, n, over int, limit int) []treeFile {
	t.Helper()
	folders := []string{"", "a", "a/b", "a/b/c", "été/résumés", "日本語/資料", "emoji 📁/sub dir", "spaces in/names"}
	names := []string{"Facture n°%d.pdf", "file %03d.txt", "ファイル%d.txt", "naïve café %d.doc", "Ünïcödé-%d.bin"}
	var out []treeFile
	for i := range n {
		rel := strings.TrimPrefix(folders[i%len(folders)]+"/"+fmt.Sprintf(names[i%len(names)], i), "/")
		size := 1 + (i*37)%(limit-1)
		switch {
		case i < over:
			size = limit + 1 + i*100
		case i < over+5:
			size = 0
		}
		data := targetstest.RandomBytes(size, uint64(1000+i))
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, treeFile{path: rel, size: size, sha: sha(data)})
	}
	return out
}

// bwPipeline is ferry with a Blueworks target whose size limit is limit,
// and its fake.
func bwPipeline(t *testing.T, limit int) (*pipeline, *fakeblueworks.Server) {
	fake := fakeblueworks.New(fakeblueworks.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - name: bw
    kind: blueworks
    base_url: %s
    client_id: ferry
    client_secret: ferry-secret
    max_file_bytes: %d
    concurrency: 8
    backoff: {initial: 20ms, max: 100ms}
    params: {locationField: policy}
`, srv.URL, limit), pipelineOptions{})
	return p, fake
}

func (p *pipeline) client() *client.Client {
	c, err := client.New(p.api.URL, p.key, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// syncBuffer is a bytes.Buffer safe to write from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPushDryRunThenInterruptedAndResumed pushes a tree of 300 files: the
// dry run flags the files over the target's limit and a missing parameter
// and sends nothing; a push interrupted halfway and started again ends
// with exactly one job per file, every accepted file delivered once, no
// byte of an accepted file sent twice, and a report listing every file.
func TestPushDryRunThenInterruptedAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a push of a whole tree, interrupted and resumed, takes ~15 s (make test runs it)")
	}
	t.Parallel()
	const limit, over = 4096, 4
	p, fake := bwPipeline(t, limit)
	dir := t.TempDir()
	tree := makeTree(t, dir, 300, over, limit)
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link to a")); err != nil {
		t.Fatal(err)
	}
	c := p.client()
	ctx := context.Background()
	opts := push.Options{Paths: []string{dir}, Target: "bw", Batch: "archive 2026", Concurrency: 4,
		Params: map[string]string{"parentId": "P1"}}

	// Dry run without a required parameter: every file flagged.
	var out bytes.Buffer
	dry := opts
	dry.DryRun, dry.Params, dry.Out = true, nil, &out
	res, err := push.Run(ctx, c, dry)
	if !errors.Is(err, push.ErrIncomplete) || res.Failed() != len(tree) || !strings.Contains(out.String(), "missing param.parentId") {
		t.Fatalf("dry run without parentId: %v, %d problems:\n%s", err, res.Failed(), tail(out.String()))
	}
	// With it: exactly the files over the limit.
	out.Reset()
	dry.Params = opts.Params
	res, err = push.Run(ctx, c, dry)
	if !errors.Is(err, push.ErrIncomplete) || res.Failed() != over || res.Files != len(tree) || res.Symlinks != 1 {
		t.Fatalf("dry run: %v; %d problems of %d files, %d symlinks:\n%s", err, res.Failed(), res.Files, res.Symlinks, tail(out.String()))
	}
	for _, pr := range res.Problems {
		if pr.Kind != push.ProblemTooLarge || !strings.Contains(pr.Err, "limit of 4096 bytes (4.0 KiB)") {
			t.Errorf("dry run problem %+v", pr)
		}
	}
	if n := countLines(out.String(), "send "); n != len(tree)-over {
		t.Errorf("dry run lists %d files to send, want %d", n, len(tree)-over)
	}
	if _, err := c.Batch(ctx, "archive 2026"); !client.IsNotFound(err) || len(fake.Requests()) != 0 {
		t.Fatalf("the dry run sent something: batch %v, %d requests at the target", err, len(fake.Requests()))
	}

	// Interrupted once 150 files are accepted.
	var lines syncBuffer
	first := opts
	first.Progress, first.LineInterval = &lines, 50*time.Millisecond
	var uploaded1 sync.Map
	var n atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first.OnFile = func(r push.FileResult) {
		if r.Outcome == push.OutcomeUploaded {
			uploaded1.Store(r.Path, true)
			if n.Add(1) == 150 {
				cancel()
			}
		}
	}

	res1, err := push.Run(cctx, c, first)
	if !errors.Is(err, push.ErrInterrupted) || res1.Uploaded < 150 || res1.Uploaded >= len(tree)-over {
		t.Fatalf("interrupted push: %v, %d uploaded", err, res1.Uploaded)
	}
	if !strings.Contains(lines.String(), "upload: files ") {
		t.Errorf("no progress lines:\n%s", lines.String())
	}

	// Started again, with --wait: the rest, and only the rest.
	var bar syncBuffer
	again := opts
	again.Wait, again.PollInterval, again.Out = true, 100*time.Millisecond, &out
	again.Progress, again.Terminal = &bar, true
	var skipped2, uploaded2 []string
	var mu sync.Mutex
	again.OnFile = func(r push.FileResult) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Outcome {
		case push.OutcomeSkipped:
			skipped2 = append(skipped2, r.Path)
		case push.OutcomeUploaded:
			uploaded2 = append(uploaded2, r.Path)
		}
	}
	out.Reset()

	res2, err := push.Run(ctx, c, again)
	if !errors.Is(err, push.ErrIncomplete) || !strings.Contains(err.Error(), fmt.Sprintf("%d files not accepted", over)) || strings.Contains(err.Error(), "SUCCESS") {
		t.Fatalf("resumed push: %v (want only the %d files over the limit not accepted)\n%s", err, over, tail(out.String()))
	}
	accepted := len(tree) - over
	if res2.Uploaded+res2.Skipped != accepted || res2.Skipped < res1.Uploaded {
		t.Errorf("resumed: %d uploaded + %d already accepted, want %d in all, at least the %d of the first run skipped", res2.Uploaded, res2.Skipped, accepted, res1.Uploaded)
	}
	sizes := map[string]int{}
	for _, f := range tree {
		sizes[f.path] = f.size
	}
	var resent int64
	for _, path := range uploaded2 {
		if _, ok := uploaded1.Load(path); ok {
			t.Errorf("%s was uploaded by both runs", path)
		}
		resent += int64(sizes[path])
	}
	if res2.SentBytes != resent {
		t.Errorf("resumed push sent %d bytes, the files it uploaded hold %d: bytes of accepted files were sent again", res2.SentBytes, resent)
	}
	if d := res2.Delivery; d == nil || d.ByStatus[apitypes.StatusSuccess].Files != int64(accepted) || d.Total.Files != int64(accepted) {
		t.Errorf("deliveries: %+v", res2.Delivery)
	}
	if s := bar.String(); !strings.Contains(s, "deliveries:") || !strings.Contains(s, "already accepted") || !strings.Contains(s, "%") {
		t.Errorf("no progress bars:\n%q", tail(s))
	}

	// One job per file; every accepted file delivered exactly once.
	var report []apitypes.ReportRow
	if err := c.ReportRows(ctx, "archive 2026", "", func(r apitypes.ReportRow) error { report = append(report, r); return nil }); err != nil {
		t.Fatal(err)
	}
	byPath := map[string]apitypes.ReportRow{}
	for _, r := range report {
		if _, dup := byPath[r.Path]; dup {
			t.Errorf("two jobs for %s", r.Path)
		}
		byPath[r.Path] = r
	}
	for i, f := range tree {
		r, ok := byPath[f.path]
		switch {
		case i < over && ok:
			t.Errorf("%s is over the limit, yet has job %s", f.path, r.JobID)
		case i < over:
		case !ok:
			t.Errorf("%s missing from the report", f.path)
		case r.Status != apitypes.StatusSuccess || r.SHA256 != f.sha || r.Size != int64(f.size) || r.RemoteID == "":
			t.Errorf("%s: %+v, want SUCCESS with sha %s", f.path, r, f.sha)
		}
	}
	if len(report) != accepted {
		t.Errorf("report has %d rows, want %d", len(report), accepted)
	}
	delivered := map[string]int{}
	for _, a := range fake.Attachments() {
		delivered[a.Name+"\x00"+a.SHA256]++
	}
	for _, f := range tree[over:] {
		if delivered[filepath.Base(f.path)+"\x00"+f.sha] != 1 {
			t.Errorf("%s delivered %d times", f.path, delivered[f.sha])
		}
	}

	// A third run has nothing left to send.
	res3, err := push.Run(ctx, c, opts)
	if res3.Uploaded != 0 || res3.Skipped != accepted || res3.SentBytes != 0 || !errors.Is(err, push.ErrIncomplete) {
		t.Errorf("third run: %d uploaded, %d skipped, %d bytes sent: %v", res3.Uploaded, res3.Skipped, res3.SentBytes, err)
	}
}

// TestPushChangedParamsConflict checks that a batch keeps its definition:
// pushing it again with other parameters is refused before any upload.
func TestPushChangedParamsConflict(t *testing.T) {
	t.Parallel()
	p, _ := bwPipeline(t, 4096)
	dir := t.TempDir()
	makeTree(t, dir, 3, 0, 4096)
	c := p.client()
	o := push.Options{Paths: []string{dir}, Target: "bw", Params: map[string]string{"parentId": "P1"}}
	res, err := push.Run(context.Background(), c, o)
	if err != nil || res.Uploaded != 3 || !strings.HasPrefix(res.Batch, filepath.Base(dir)+"-") {
		t.Fatalf("push: %v %+v", err, res)
	}
	o.Params["parentId"] = "P2"
	if _, err := push.Run(context.Background(), c, o); err == nil || !strings.Contains(err.Error(), "same --target and --param") {
		t.Errorf("other params: %v", err)
	}
	// Without --target, the batch's is used.
	o.Params["parentId"], o.Target, o.Batch = "P1", "", res.Batch
	if res, err := push.Run(context.Background(), c, o); err != nil || res.Skipped != 3 {
		t.Errorf("again without --target: %v %+v", err, res)
	}
}

var (
	buildOnce sync.Once
	ferryBin  string
	buildErr  error
)

// ferryBinary builds bin/ferry once for the package's tests.
func ferryBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		ferryBin = filepath.Join(dir, "ferry")
		_, self, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", ferryBin, "./cmd/ferry")
		cmd.Dir = filepath.Join(filepath.Dir(self), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ferryBin
}

// TestCLI runs the ferry binary as a person would: push with a dry run,
// then for real with --wait, status, report, jobs list and retry.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary (make test runs it)")
	}
	t.Parallel()
	bin := ferryBinary(t)
	p, fake := bwPipeline(t, 4096)
	dir := t.TempDir()
	tree := makeTree(t, dir, 12, 1, 4096)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "FERRY_SERVER="+p.api.URL, "FERRY_API_KEY="+p.key)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := run("push", dir, "--target", "bw", "--param", "parentId=P1", "--batch", "cli", "--dry-run")
	if err == nil || !strings.Contains(stdout, "TOO LARGE") || !strings.Contains(stdout, "dry run: 11 of 12 files") {
		t.Fatalf("dry run: %v\n%s\n%s", err, stdout, stderr)
	}
	stdout, stderr, err = run("push", dir, "--target", "bw", "--param", "parentId=P1", "--batch", "cli",
		"--exclude", filepath.Base(tree[0].path), "--wait", "--poll-interval", "100ms", "--progress-interval", "100ms")
	if err != nil || !strings.Contains(stdout, "11 accepted (11 uploaded") || !strings.Contains(stdout, "11 SUCCESS") {
		t.Fatalf("push --wait: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "upload: files 11/11") || !strings.Contains(stderr, "deliveries: 11/11 final") {
		t.Errorf("progress lines:\n%s", stderr)
	}
	stdout, _, err = run("status", "cli")
	if err != nil || !regexp.MustCompile(`(?m)^SUCCESS\s+11\s`).MatchString(stdout) {
		t.Errorf("status: %v\n%s", err, stdout)
	}
	stdout, _, err = run("report", "cli")
	rows, cerr := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || cerr != nil || len(rows) != 12 {
		t.Errorf("report: %v %v, %d rows\n%s", err, cerr, len(rows), stdout)
	}
	stdout, _, err = run("jobs", "list", "--batch", "cli", "--status", "success")
	if err != nil || strings.Count(stdout, "SUCCESS") != 11 {
		t.Errorf("jobs list: %v\n%s", err, stdout)
	}

	// Deliveries refused for good, then re-queued by error.
	if err := fake.FailUpload(3, "SPACE"); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "more.csv")
	var m strings.Builder
	m.WriteString("path,param.parentId\n")
	for _, f := range tree[1:4] {
		fmt.Fprintf(&m, "%s,P9\n", f.path)
	}
	if err := os.WriteFile(manifest, []byte(m.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = run("push", "--manifest", manifest, "--target", "bw", "--batch", "cli-2", "--wait", "--poll-interval", "100ms", "--progress", "none")
	if err == nil || !strings.Contains(stdout, "3 FAILED") || !strings.Contains(stdout, "no space left") {
		t.Fatalf("push with refusals: %v\n%s", err, stdout)
	}
	if _, _, err := run("jobs", "retry"); err == nil {
		t.Error("jobs retry without an id or a filter succeeded")
	}
	stdout, _, err = run("jobs", "retry", "--batch", "cli-2", "--error", "NO SPACE")
	if err != nil || strings.TrimSpace(stdout) != "3 jobs re-queued" {
		t.Fatalf("jobs retry: %v %s", err, stdout)
	}
	var sum apitypes.BatchSummary
	waitFor(t, 30*time.Second, func() bool {
		sum, err = p.client().Batch(context.Background(), "cli-2")
		return err == nil && sum.Done()
	})
	if sum.ByStatus[apitypes.StatusSuccess].Files != 3 {
		t.Errorf("after the retry: %+v", sum.ByStatus)
	}
	for _, a := range fake.Attachments() {
		if a.ParentID == "P9" {
			continue
		}
		if a.ParentID != "P1" {
			t.Errorf("attachment %s under %q", a.Name, a.ParentID)
		}
	}
}

// countLines counts the lines of s that start with prefix.
func countLines(s, prefix string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// tail is the end of a long output, for failure messages.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = slices.Concat([]string{"..."}, lines[len(lines)-20:])
	}
	return strings.Join(lines, "\n")
}
