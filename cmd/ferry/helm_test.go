package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// helmVersion is the helm make helm-check builds into bin/.
const helmVersion = "v4.3.2"

const chartDir = "../../deploy/helm/ferry"

// helmBinary returns the pinned helm (FERRY_HELM, or bin/helm-<version>
// as make helm-check builds it), skipping the test without one.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("FERRY_HELM")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "helm-"+helmVersion)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no helm at %s: make helm-check builds it (go install helm.sh/helm/v4/cmd/helm@%s)", bin, helmVersion)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// manifest is the part of a rendered Kubernetes object the test reads.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []container `yaml:"containers"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name string `yaml:"name"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     *string
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Liveness  *probe `yaml:"livenessProbe"`
	Readiness *probe `yaml:"readinessProbe"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// renderChart runs helm template with the values files given and decodes
// every manifest.
func renderChart(t *testing.T, helm string, args ...string) ([]manifest, error) {
	t.Helper()
	cmd := exec.Command(helm, append([]string{"template", "ferry", chartDir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	var all []manifest
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return all, nil
		}
		if err != nil {
			t.Fatalf("helm template %v: %v", args, err)
		}
		if m.Kind != "" {
			all = append(all, m)
		}
	}
}

// secretSettings must come from a Secret, never a value in the manifest.
var secretSettings = []string{"FERRY_DATABASE_URL", "FERRY_S3_ACCESS_KEY", "FERRY_S3_SECRET_KEY", "FERRY_METRICS_KEY"}

// TestHelmChart renders the chart with its default values and with the
// cluster values, and checks what the pods run: every environment variable
// is a setting ferry reads, secrets come from Secrets, the api and worker
// are probed on /healthz and /readyz, the migrate Job runs a command the
// binary has.
func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	known := settingNames()
	for _, values := range [][]string{nil, {"-f", filepath.Join(chartDir, "ci", "cluster-values.yaml")}} {
		ms, err := renderChart(t, helm, values...)
		if err != nil {
			t.Fatalf("helm template %v: %v", values, err)
		}
		kinds := map[string]int{}
		for _, m := range ms {
			kinds[m.Kind]++
			for _, c := range m.Spec.Template.Spec.Containers {
				checkContainer(t, m, c, known)
			}
		}
		if kinds["Deployment"] != 2 || kinds["Job"] != 1 || kinds["Service"] < 1 {
			t.Errorf("values %v rendered %v: want 2 Deployments, the migrate Job and a Service", values, kinds)
		}
		if values != nil && (kinds["ServiceMonitor"] != 1 || kinds["Ingress"] != 1) {
			t.Errorf("cluster values rendered %v: want the ServiceMonitor and the Ingress", kinds)
		}
	}
}

func checkContainer(t *testing.T, m manifest, c container, known []string) {
	t.Helper()
	where := m.Kind + " " + m.Metadata.Name
	for _, e := range c.Env {
		// OTEL_* are OpenTelemetry's, read by its SDK (README: Tracing).
		if !slices.Contains(known, e.Name) && !strings.HasPrefix(e.Name, "OTEL_") {
			t.Errorf("%s sets %s, which ferry does not read (known: %v)", where, e.Name, known)
		}
		if slices.Contains(secretSettings, e.Name) && (e.Value != nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s: %s is not taken from a Secret", where, e.Name)
		}
	}
	if len(c.Args) != 1 {
		t.Errorf("%s runs %v", where, c.Args)
		return
	}
	if sub, _, err := rootCommand().Find(c.Args); err != nil || sub.Name() != c.Args[0] {
		t.Errorf("%s runs ferry %v, which is no ferry command", where, c.Args)
	}
	if m.Kind != "Deployment" {
		return
	}
	if c.Liveness == nil || c.Liveness.HTTPGet.Path != "/healthz" || c.Readiness == nil || c.Readiness.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: probes %+v %+v, want /healthz and /readyz", where, c.Liveness, c.Readiness)
		return
	}
	// A worker has no API: ferry worker answers its probes on
	// FERRY_METRICS_LISTEN (TestWorkerOpsListener).
	if want := map[string]string{"api": "http", "worker": "metrics"}[c.Args[0]]; c.Readiness.HTTPGet.Port != want {
		t.Errorf("%s is probed on port %s, want %s", where, c.Readiness.HTTPGet.Port, want)
	}
}

// The chart refuses a secret inline in its values, a variable that is no
// ferry setting, and a missing targets file.
func TestHelmChartRefuses(t *testing.T) {
	helm := helmBinary(t)
	cases := []struct {
		set  []string
		want string
	}{
		{[]string{"env.FERRY_S3_SECRET_KEY=inline"}, "secretEnv"},
		{[]string{"env.HTTP_PROXY=x"}, "FERRY_* settings and the OTEL_*"},
		{[]string{"env.FERRY_LISTEN=0.0.0.0:1"}, "set by the chart"},
		{[]string{"targets.configMap="}, "targets.configMap or targets.secret"},
	}
	for _, tc := range cases {
		var args []string
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		if _, err := renderChart(t, helm, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("helm template --set %v: %v, want an error saying %q", tc.set, err, tc.want)
		}
	}
}
