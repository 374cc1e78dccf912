package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A malformed setting stops the process at start with exit code 2 and a
// message naming the variable, the value and what is expected; before, it
// was silently replaced by its default (or, for FERRY_NO_MIGRATE=false,
// taken as true).
func TestMalformedSettingsExit2(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary (make test runs it)")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cases := []struct {
		env, want string
	}{
		{"FERRY_SHUTDOWN_GRACE=30", "a duration"},
		{"FERRY_MAX_UPLOAD_BYTES=10GB", "a number of bytes"},
		{"FERRY_RECENT_FILES_BYTES=64MiB", "a whole number"},
		{"FERRY_RECENT_FILES_BYTES=-1", "a whole number"},
		{"FERRY_NO_MIGRATE=maybe", "true or false"},
		{"FERRY_RETENTION=7d", "a duration"},
		{"FERRY_LEASE=-5s", "at least"},
		{"FERRY_BODY_IDLE_TIMEOUT=soon", "a duration"},
		{"FERRY_QUEUE_REPLICAS=three", "a whole number"},
		{"FERRY_RATE_LIMIT=fast", "requests"},
		{"FERRY_LOG_FORMAT=xml", "text or json"},
		{"FERRY_MIN_UPLOAD_RATE=8KiB", "a whole number"},
		{"FERRY_AUTH_FAILURE_LIMIT=lots", "requests"},
		{"FERRY_BODY_READ_TIMEOUT=30", "a duration"},
	}
	for _, tc := range cases {
		for _, sub := range []string{"serve", "migrate"} {
			cmd := exec.Command(bin, sub)
			cmd.Env = append(os.Environ(), tc.env, "FERRY_DATABASE_URL=postgres://127.0.0.1:1/none?connect_timeout=1", "FERRY_NATS_URL=nats://127.0.0.1:1")
			done := make(chan struct{})
			timer := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
			out, err := cmd.CombinedOutput()
			timer.Stop()
			close(done)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("%s ferry %s: %v, want exit status 2\n%s", tc.env, sub, err, out)
				continue
			}
			name, value, _ := strings.Cut(tc.env, "=")
			if msg := string(out); !strings.Contains(msg, name) || !strings.Contains(msg, value) || !strings.Contains(msg, tc.want) {
				t.Errorf("%s ferry %s said %q: want the variable, the value and %q", tc.env, sub, msg, tc.want)
			}
		}
	}
}
