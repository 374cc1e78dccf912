package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// The Grafana dashboard and the alerting rules under deploy/ name metrics
// of ferry's /metrics only, with PromQL that names them. promtool is not
// used (it would mean building Prometheus); this test reads the PromQL
// itself.
const (
	dashboardFile = "../../deploy/grafana/ferry.json"
	rulesFile     = "../../deploy/prometheus/ferry-rules.yml"
)

// TestDeployMetricsExist runs ferry serve, uploads and delivers a file and
// refuses another, then checks that every metric the dashboard's panels and
// the rules name is among the families /metrics exposes.
func TestDeployMetricsExist(t *testing.T) {
	used := deployMetricNames(t)
	if len(used) < 10 {
		t.Fatalf("found only %d metric names in the dashboard and rules: %v", len(used), used)
	}
	exposed := exposedMetrics(t, used)
	for name, where := range used {
		if !exposed[name] {
			t.Errorf("%s names %s, which ferry's /metrics does not expose", strings.Join(where, ", "), name)
		}
	}
}

// deployMetricNames returns each metric name the dashboard and the rules
// use, with where it is used.
func deployMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where string, exprs []string) {
		for _, e := range exprs {
			for _, name := range promqlMetricNames(e) {
				if !slices.Contains(used[name], where) {
					used[name] = append(used[name], where)
				}
			}
		}
	}
	dash, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string            `json:"uid"`
		Title  string            `json:"title"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels", dashboardFile, d.UID, d.Title, len(d.Panels))
	}
	var whole any
	_ = json.Unmarshal(dash, &whole)
	add("the dashboard", dashboardQueries(whole))

	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: wants alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			add("rule "+r.Alert, []string{r.Expr})
		}
	}
	return used
}

// dashboardQueries returns every PromQL query of a dashboard: the panels'
// targets' expr, and the variables' label_values(metric, label) queries.
func dashboardQueries(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				out = append(out, s)
				continue
			}
			out = append(out, dashboardQueries(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, dashboardQueries(x)...)
		}
	}
	return out
}

var (
	promStrings = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// label matchers, ranges and subqueries, and Grafana's variables
	promBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\$\{?\w+\}?`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	labelValues  = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
		"atan2": true}
)

// promqlMetricNames returns the metric names a PromQL expression selects:
// the identifiers that are neither functions, keywords, label names nor
// inside strings, label matchers or ranges.
func promqlMetricNames(expr string) []string {
	expr = labelValues.ReplaceAllString(expr, "$1")
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promBraces.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(expr[loc[0]-1:loc[0]], "0123456789.") {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		if strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "(") || promKeywords[strings.ToLower(name)] {
			continue // a function, an aggregation or a keyword
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (target) (rate(ferry_a_total{outcome="SUCCESS", target=~"$target"}[$__rate_interval]))`, []string{"ferry_a_total"}},
		{`histogram_quantile(0.95, sum by (le, target) (rate(ferry_b_bucket[5m]))) > 1e3`, []string{"ferry_b_bucket"}},
		{"sum(rate(x[5m])) / on (target) group_left sum(y offset 1h) and z unless w", []string{"x", "y", "z", "w"}},
		{`time() - max(ferry_c) > 300`, []string{"ferry_c"}},
		{`label_values(ferry_d_total, target)`, []string{"ferry_d_total"}},
		{`max by (target) (ferry_e{state="paused_credentials"}) == 1`, []string{"ferry_e"}},
		{`count without (instance) (ferry_f{a='b(c)'})`, []string{"ferry_f"}},
	}
	for _, tc := range cases {
		if got := promqlMetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// exposedMetrics runs ferry serve as the binary does, delivers a file and
// refuses another, and returns the metric names /metrics exposes (a
// histogram's _bucket, _sum and _count included) once every name of want
// is there, or after 45 s: the backlog gauges wait for a sample after the
// workers made their consumers (one every 15 s).
func exposedMetrics(t *testing.T, want map[string][]string) map[string]bool {
	t.Helper()
	bin := buildFerry(t)
	_, dbURL := testenv.Postgres(t)
	s3 := testenv.S3Config()
	received := sink.New(sink.Options{})
	target := httptest.NewServer(received)
	t.Cleanup(target.Close)
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsFile, fmt.Appendf(nil, "targets:\n  - {name: archive, kind: http, url: %q}\n", target.URL+"/ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	env := append(os.Environ(), "FERRY_DATABASE_URL="+dbURL, "FERRY_LISTEN="+listen, "FERRY_TARGETS="+targetsFile,
		"FERRY_S3_ENDPOINT="+s3.Endpoint, "FERRY_S3_ACCESS_KEY="+s3.AccessKey, "FERRY_S3_SECRET_KEY="+s3.SecretKey,
		"FERRY_S3_BUCKET="+s3.Bucket, "FERRY_DATA_DIR="+filepath.Join(dir, "data"), "FERRY_NATS_URL=",
		"FERRY_SHUTDOWN_GRACE=5s", "FERRY_METRICS_LISTEN=", "FERRY_METRICS_KEY=")
	create := exec.Command(bin, "apikey", "create", "--name", "metrics")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := strings.TrimSpace(string(out))

	serve := exec.Command(bin, "serve")
	serve.Env = env
	var logs bytes.Buffer
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = serve.Process.Kill()
			<-done
		}
	})
	base := "http://" + listen
	waitUntil(t, 60*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	for _, name := range []string{"archive", "nowhere"} { // delivered; refused (unknown_target)
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/uploads?target="+name+"&filename=m.pdf", strings.NewReader("%PDF-1.7 metrics"))
		req.Header.Set("Content-Type", "application/pdf")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitUntil(t, 60*time.Second, func() bool { return len(received.Documents()) == 1 })
	deadline := time.Now().Add(45 * time.Second)
	for {
		families := scrapeFamilies(t, base+"/metrics")
		missing := 0
		for name := range want {
			if !families[name] {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return families
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// scrapeFamilies reads the metric names of a Prometheus text exposition.
func scrapeFamilies(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		switch f[3] {
		case "histogram":
			names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
		case "summary":
			names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
		}
	}
	return names
}
