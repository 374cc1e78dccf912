package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/push"
)

// TestPushServerLimit: a dry run checks the server's own size limit (not
// only the target's), and a push whose every file is refused leaves no
// empty batch behind.
func TestPushServerLimit(t *testing.T) {
	t.Parallel()
	pt := newPickyTarget(t)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: dms, kind: http, url: %q, max_attempts: 1}
`, pt.URL), pipelineOptions{maxUpload: 1000, noWorker: true})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "huge.bin"), bytes.Repeat([]byte("x"), 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	c := p.client()
	ctx := context.Background()
	var out bytes.Buffer
	res, err := push.Run(ctx, c, push.Options{Paths: []string{dir}, Target: "dms", Batch: "big", DryRun: true, Out: &out})
	if !errors.Is(err, push.ErrIncomplete) || len(res.Problems) != 1 || res.Problems[0].Kind != push.ProblemTooLarge ||
		!strings.Contains(out.String(), "over the server's limit of 1000 bytes") {
		t.Fatalf("dry run: %v %+v\n%s", err, res.Problems, out.String())
	}
	res, err = push.Run(ctx, c, push.Options{Paths: []string{dir, filepath.Join(dir, "nope")}, Target: "dms", Batch: "big", Out: &out})
	if !errors.Is(err, push.ErrIncomplete) || res.Uploaded != 0 || res.SentBytes != 0 {
		t.Fatalf("push: %v %+v", err, res)
	}
	if _, err := c.Batch(ctx, "big"); !client.IsNotFound(err) {
		t.Errorf("a push that sent nothing left batch big behind: %v", err)
	}
}

// TestPushWaitGroupsFailures: push --wait says why jobs failed in groups
// by reason with counts and a few files, not one line per file.
func TestPushWaitGroupsFailures(t *testing.T) {
	t.Parallel()
	pt := newPickyTarget(t)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: dms, kind: http, url: %q, max_attempts: 1}
`, pt.URL), pipelineOptions{})
	dir := t.TempDir()
	for i := range 9 {
		body := fmt.Sprintf("good-%d", i)
		switch {
		case i < 6:
			body = fmt.Sprintf("bad-%d", i)
		case i < 8:
			body = fmt.Sprintf("busy-%d", i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f-%d.txt", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	res, err := push.Run(context.Background(), p.client(), push.Options{Paths: []string{dir}, Target: "dms", Batch: "grouped",
		Wait: true, PollInterval: 100e6, Out: &out})
	if !errors.Is(err, push.ErrIncomplete) || res.Delivery == nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"8 FAILED, by reason:",
		`     6 × send: HTTP 422: file "…" refused`,
		"     2 × send: HTTP 403: quota exceeded",
		"ferry report grouped --status FAILED",
		"ferry jobs retry --batch grouped",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "e.g. "); n != 3+2 {
		t.Errorf("%d examples, want 3 of the first group and 2 of the second:\n%s", n, s)
	}
}

// TestCLIErrors: one "ferry:" prefix; a server that is not running is
// named, with how to start one; a jobs list cut at --limit says so.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	bin := ferryBinary(t)
	p := newPipeline(t, `
targets:
  - {name: dms, kind: http, url: "http://127.0.0.1:1/", max_attempts: 1}
`, pipelineOptions{noWorker: true})
	run := func(server, key string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "FERRY_SERVER="+server, "FERRY_API_KEY="+key)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	_, stderr, err := run(p.api.URL, "fy_nope", "targets")
	if err == nil || !strings.HasPrefix(stderr, "ferry: unauthorized (HTTP 401)") || strings.Contains(stderr, "ferry: ferry:") {
		t.Errorf("wrong key: %v %q", err, stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	_, stderr, err = run(down, p.key, "targets")
	if err == nil || !strings.Contains(stderr, "no ferry server answers at "+down) || !strings.Contains(stderr, "make run") ||
		!strings.Contains(stderr, "ferry serve") || strings.Contains(stderr, "dial tcp") {
		t.Errorf("server down: %v %q", err, stderr)
	}

	for i := range 3 {
		p.upload("dms", file{name: fmt.Sprintf("f%d.txt", i), data: []byte("x")})
	}
	stdout, stderr, err := run(p.api.URL, p.key, "jobs", "list", "--limit", "2")
	m := regexp.MustCompile(`--cursor (\S+) the next page`).FindStringSubmatch(stderr)
	if err != nil || strings.Count(stdout, "f") < 2 || !strings.Contains(stderr, "more jobs match than the 2 listed: --all") || m == nil {
		t.Fatalf("jobs list --limit 2: %v\n%s\n%s", err, stdout, stderr)
	}
	stdout, stderr, err = run(p.api.URL, p.key, "jobs", "list", "--limit", "2", "--cursor", m[1])
	if err != nil || strings.Count(stdout, ".txt") != 1 || stderr != "" {
		t.Errorf("the next page: %v\n%s\n%s", err, stdout, stderr)
	}
	stdout, stderr, err = run(p.api.URL, p.key, "jobs", "list", "--limit", "2", "--all")
	if err != nil || strings.Count(stdout, ".txt") != 3 || stderr != "" {
		t.Errorf("--all: %v\n%s\n%s", err, stdout, stderr)
	}
}
