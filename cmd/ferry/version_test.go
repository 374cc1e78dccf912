package main

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// buildFerry builds the binary into a temporary directory, with extra
// go build arguments.
func buildFerry(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestReadBuildFacts(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	cases := []struct {
		name         string
		info         *debug.BuildInfo
		ok           bool
		commit, date string
		want         buildFacts
	}{
		{name: "vcs stamps", info: info, ok: true,
			want: buildFacts{Version: "v1.4.0", Commit: "abc123", Modified: true, Date: "2026-12-01T10:00:00Z", DateIsVCS: true, Go: "go1.99"}},
		{name: "link-time values win", info: info, ok: true, commit: "def456-dirty", date: "2026-12-07T18:00:00Z",
			want: buildFacts{Version: "v1.4.0", Commit: "def456-dirty", Date: "2026-12-07T18:00:00Z", Go: "go1.99"}},
		{name: "a checkout without stamps", info: &debug.BuildInfo{GoVersion: "go1.99"}, ok: true,
			want: buildFacts{Version: "(devel)", Commit: "unknown", Go: "go1.99"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buildCommit, buildDate = tc.commit, tc.date
			t.Cleanup(func() { buildCommit, buildDate = "", "" })
			if got := readBuildFacts(tc.info, tc.ok); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// ferry version prints what the build recorded: here the commit and date
// given at link time, as make build gives them.
func TestVersionCommand(t *testing.T) {
	bin := buildFerry(t, "-ldflags", "-X main.buildCommit=0123456789ab -X main.buildDate=2026-12-07T18:00:00Z")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("ferry version: %v", err)
	}
	for _, want := range []string{"ferry ", "commit:  0123456789ab", "built:   2026-12-07T18:00:00Z", "go:      go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ferry version printed:\n%s\nwant %q", out, want)
		}
	}
	if out, err := exec.Command(bin, "version", "extra").CombinedOutput(); err == nil {
		t.Errorf("ferry version extra succeeded: %s", out)
	}
}

// Shell completion, as the README documents it: cobra's script for each
// shell, and its completions of the subcommands.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		root := rootCommand()
		var out strings.Builder
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil || !strings.Contains(out.String(), "ferry") {
			t.Errorf("ferry completion %s: %v, %d bytes", shell, err, out.Len())
		}
	}
	root := rootCommand()
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"__complete", "con"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "config") {
		t.Errorf("completing \"con\": %v, %q", err, out.String())
	}
}
