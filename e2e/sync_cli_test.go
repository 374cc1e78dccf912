package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
)

// syncCLI runs the ferry binary's sync against the env.
type syncCLI struct {
	e   *syncEnv
	bin string
}

func (c syncCLI) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "FERRY_SERVER="+c.e.front.URL, "FERRY_API_KEY="+c.e.p.key)
	return cmd
}

// run runs ferry with args and returns stdout, stderr and the exit code.
func (c syncCLI) run(args ...string) (string, string, int) {
	cmd := c.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var xe *exec.ExitError
	switch {
	case errors.As(err, &xe):
		return stdout.String(), stderr.String(), xe.ExitCode()
	case err != nil:
		c.e.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

func (c syncCLI) syncArgs(extra ...string) []string {
	return append([]string{"sync", c.e.dir, "--target", "docs", "--state", c.e.state, "--min-age", "100ms"}, extra...)
}

// start starts ferry sync --watch and returns it, its stdout lines
// arriving on a channel.
func (c syncCLI) start(extra ...string) (*exec.Cmd, <-chan string) {
	return c.startCmd(c.command(c.syncArgs(append([]string{"--watch", "--json"}, extra...)...)...))
}

// startCmd starts cmd and returns it, its stdout lines arriving on a
// channel.
func (c syncCLI) startCmd(cmd *exec.Cmd) (*exec.Cmd, <-chan string) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.e.t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	c.e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, lines
}

// waitEvent waits for a JSON event of kind on lines.
func waitEvent(t *testing.T, lines <-chan string, kind string, within time.Duration) syncer.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sync ended before a %s event", kind)
			}
			var ev syncer.Event
			if json.Unmarshal([]byte(l), &ev) == nil && ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", kind, within)
		}
	}
}

// TestSyncCLI: exit statuses, JSON lines, ferry sync status, a second
// sync on the same state refused, SIGTERM.
func TestSyncCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary")
	}
	e := newSyncEnv(t)
	c := syncCLI{e: e, bin: ferryBinary(t)}
	e.write("a.txt", "alpha")
	stdout, stderr, code := c.run(c.syncArgs("--json")...)
	if code != 0 || !strings.Contains(stdout, `"event":"accepted"`) || !strings.Contains(stdout, `"event":"summary"`) {
		t.Fatalf("sync: exit %d\n%s\n%s", code, stdout, stderr)
	}
	e.waitTarget(map[string][]string{"a.txt": {"alpha"}}, 30*time.Second)
	if _, stderr, code = c.run("sync", "/nonexistent/folder", "--target", "docs", "--state", t.TempDir()); code != 3 {
		t.Fatalf("source gone: exit %d, want 3\n%s", code, stderr)
	}
	if _, _, code = c.run("sync", e.dir, "--max-delete", "lots", "--target", "docs"); code != 2 {
		t.Fatalf("bad --max-delete: exit %d, want 2", code)
	}

	cmd, lines := c.start("--interval", "500ms")
	waitEvent(t, lines, syncer.EventRescan, 30*time.Second)
	_, stderr, code = c.run(c.syncArgs()...)
	if code != 4 || !strings.Contains(stderr, "another ferry sync") {
		t.Fatalf("second sync on the state: exit %d, want 4\n%s", code, stderr)
	}
	e.write("b.txt", "bee")
	waitEvent(t, lines, syncer.EventAccepted, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stdout, _, _ = c.run("sync", "status", "--state", e.state)
		if strings.Contains(stdout, "sync running") && strings.Contains(stdout, "tracked 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status while running:\n%s", stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sync --watch after SIGTERM: %v", err)
	}
	stdout, _, code = c.run("sync", "status", "--state", e.state)
	if code != 0 || !strings.Contains(stdout, "no sync running") || !strings.Contains(stdout, "tracked  2, pending 0") {
		t.Fatalf("status after: exit %d\n%s", code, stdout)
	}
	e.waitTarget(map[string][]string{"a.txt": {"alpha"}, "b.txt": {"bee"}}, 30*time.Second)
}

// TestSyncKilledMidUpload: sync killed -9 while ferry's answers to its
// uploads are lost, files changed while it is dead, then restarted: no
// change lost, no version twice.
func TestSyncKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary")
	}
	e := newSyncEnv(t)
	c := syncCLI{e: e, bin: ferryBinary(t)}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		e.write(k+".txt", k+"1")
	}
	e.hold.Store(true)
	cmd, _ := c.start()
	deadline := time.Now().Add(30 * time.Second)
	for e.held.Load() < 4 { // four uploads in flight, accepted by ferry
		if time.Now().After(deadline) {
			t.Fatalf("%d uploads reached ferry", e.held.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	e.hold.Store(false)
	// What ferry accepted before the kill is delivered (so that a2 below
	// cannot supersede a1), then a.txt changes while sync is dead.
	e.waitTarget(map[string][]string{"a.txt": {"a1"}, "b.txt": {"b1"}, "c.txt": {"c1"}, "d.txt": {"d1"}}, 30*time.Second)
	e.write("a.txt", "a2")
	stdout, stderr, code := c.run(c.syncArgs()...)
	if code != 0 {
		t.Fatalf("restarted sync: exit %d\n%s\n%s", code, stdout, stderr)
	}
	e.waitTarget(map[string][]string{"a.txt": {"a1", "a2"}, "b.txt": {"b1"}, "c.txt": {"c1"}, "d.txt": {"d1"},
		"e.txt": {"e1"}, "f.txt": {"f1"}}, 30*time.Second)
}
