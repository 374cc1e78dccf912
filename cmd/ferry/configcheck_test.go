package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// configCheckEnv is an environment with every FERRY_ variable removed, so
// the test sees only what it sets.
func configCheckEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// ferry config check validates like serve, prints the settings with their
// secrets hidden, and exits 2 on a wrong setting or targets file.
func TestConfigCheck(t *testing.T) {
	bin := buildFerry(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "targets:\n  - {name: archive, kind: http, url: \"http://127.0.0.1:9/x\", headers: {Authorization: \"Bearer ${SINK_TOKEN}\"}, concurrency: 3}\n")
	badKind := write("kind.yaml", "targets:\n  - {name: archive, kind: carrier-pigeon}\n")
	secrets := []string{"pgpass-Zq81", "s3secret-Xw72", "s3access-Kd55", "metricstoken-Lm44", "natstoken-Rt66", "sinktoken-Pb90"}
	base := []string{
		"FERRY_DATABASE_URL=postgres://ferry:pgpass-Zq81@db.internal:5432/ferry?sslmode=require",
		"FERRY_NATS_URL=nats://natstoken-Rt66@nats1:4222, nats://nats2:4222",
		"FERRY_S3_ACCESS_KEY=s3access-Kd55", "FERRY_S3_SECRET_KEY=s3secret-Xw72",
		"FERRY_METRICS_KEY=metricstoken-Lm44", "SINK_TOKEN=sinktoken-Pb90",
	}
	cases := []struct {
		name     string
		env      []string
		args     []string
		code     int
		want     []string
		wantErrs []string
	}{
		{name: "valid", env: append([]string{"FERRY_TARGETS=" + good, "FERRY_QUEUE_REPLICAS=3"}, base...), code: 0,
			want: []string{"FERRY_DATABASE_URL", "postgres://ferry:xxxxx@db.internal:5432/ferry", "FERRY_QUEUE_REPLICAS", "3", "environment",
				"nats://xxxxx@nats1:4222,nats://nats2:4222", "(set, hidden)", "archive", "http", "1 target(s)", "\nok\n"}},
		{name: "a flag overrides", env: append([]string{"FERRY_TARGETS=" + good}, base...), args: []string{"--listen", "127.0.0.1:9999"}, code: 0,
			want: []string{"127.0.0.1:9999", "flag --listen"}},
		{name: "malformed setting", env: append([]string{"FERRY_TARGETS=" + good, "FERRY_RETENTION=7d"}, base...), code: 2,
			wantErrs: []string{"FERRY_RETENTION", "7d"}},
		{name: "unknown kind", env: append([]string{"FERRY_TARGETS=" + badKind}, base...), code: 2,
			wantErrs: []string{"carrier-pigeon"}},
		{name: "secret the targets file needs is unset", env: append([]string{"FERRY_TARGETS=" + good}, slices.DeleteFunc(slices.Clone(base),
			func(s string) bool { return strings.HasPrefix(s, "SINK_TOKEN=") })...), code: 2, wantErrs: []string{"SINK_TOKEN"}},
		{name: "missing targets file", env: append([]string{"FERRY_TARGETS=" + filepath.Join(dir, "none.yaml")}, base...), code: 2,
			wantErrs: []string{"none.yaml"}},
		{name: "half of TLS", env: append([]string{"FERRY_TARGETS=" + good, "FERRY_TLS_CERT=" + good}, base...), code: 2,
			wantErrs: []string{"tls-cert and tls-key"}},
		{name: "database URL", env: append([]string{"FERRY_TARGETS=" + good}, append(base, "FERRY_DATABASE_URL=postgres://a:b@h:notaport/x")...), code: 2,
			wantErrs: []string{"FERRY_DATABASE_URL"}},
		{name: "tracing", env: append([]string{"FERRY_TARGETS=" + good, "OTEL_EXPORTER_OTLP_ENDPOINT=http://u:tok@collector:4318"}, base...),
			want: []string{"tracing: on, OTLP/HTTP to http://u:xxxxx@collector:4318/v1/traces"}},
		{name: "tracing over grpc", env: append([]string{"FERRY_TARGETS=" + good, "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, base...), code: 2, wantErrs: []string{"http/protobuf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"config", "check"}, tc.args...)...)
			cmd.Env = configCheckEnv(tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.wantErrs {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, s := range secrets {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Errorf("config check printed the secret %q:\n%s%s", s, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// settingNames lists the variables bind reads, and only FERRY_ ones.
func TestSettingNames(t *testing.T) {
	names := settingNames()
	for _, want := range []string{"FERRY_DATABASE_URL", "FERRY_S3_SECRET_KEY", "FERRY_TARGETS", "FERRY_METRICS_LISTEN", "FERRY_SERVER"} {
		if !slices.Contains(names, want) {
			t.Errorf("settingNames() lacks %s: %v", want, names)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "FERRY_") {
			t.Errorf("settingNames() has %q", n)
		}
	}
}
