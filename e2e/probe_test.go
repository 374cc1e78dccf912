package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-relay/ferry/apitypes"
)

// TestProbeNowOpenCircuit (issue 24): a target whose circuit is open shows
// its next probe on the overview, the batch page, `ferry targets` and
// `ferry status`, the batch says it waits on it, and "Probe now" makes a
// worker probe at once, long before the breaker's own next probe.
func TestProbeNowOpenCircuit(t *testing.T) {
	t.Parallel()
	var fixed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fixed.Load() {
			w.WriteHeader(http.StatusCreated)
			return
		}
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(target.Close)
	p := newPipeline(t, fmt.Sprintf(`
targets:
  - {name: dms, kind: http, url: %q, max_attempts: 100, backoff: {initial: 20ms, max: 100ms}}
`, target.URL), pipelineOptions{})
	if _, _, err := p.client().CreateBatch(t.Context(), apitypes.Batch{Name: "stalled", Target: "dms"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		for _, j := range p.uploadWith(map[string]string{"target": "dms", "batch": "stalled"}, file{name: fmt.Sprintf("f%d.txt", i), data: []byte("x")}) {
			ids = append(ids, j.ID)
		}
	}
	// The circuit opens after 5 failures for 5 s; its first probe fails
	// and it stays open 10 s, then 20 s.
	openFor := func(least time.Duration) apitypes.Target {
		var dms apitypes.Target
		waitFor(t, 60*time.Second, func() bool {
			var list apitypes.TargetList
			p.get("/v1/targets", &list)
			dms = list.Targets[0]
			return dms.State == "circuit_open" && dms.NextProbeAt != nil && time.Until(*dms.NextProbeAt) > least
		})
		return dms
	}
	openFor(0)

	d := newDashboard(t, p)
	b := newBrowser(t, d.URL)
	csrf := b.login(p.key)
	_, html := b.do("GET", "/ui/", nil, nil)
	for _, want := range []string{"circuit open", "next probe", "Probe now"} {
		if !strings.Contains(html, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	_, html = b.do("GET", "/ui/batches/stalled", nil, nil)
	for _, want := range []string{"Waiting:", "circuit open", "Next probe 20", "down for maintenance", "Probe now"} {
		if !strings.Contains(html, want) {
			t.Errorf("batch page lacks %q:\n%.2500s", want, html)
		}
	}
	if os.Getenv("FERRY_SCREENSHOTS") != "" {
		screenshotWaiting(t, d.URL, p.key)
	}
	cli := func(args ...string) string {
		cmd := exec.Command(ferryBinary(t), args...)
		cmd.Env = append(os.Environ(), "FERRY_SERVER="+p.api.URL, "FERRY_API_KEY="+p.key)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		return out.String()
	}
	// The pages above take seconds on a loaded machine: wait for an open
	// period with its probe still ahead, so the CLI shows "in ...".
	openFor(3 * time.Second)
	if out := cli("targets"); !strings.Contains(out, "NEXT PROBE") || !strings.Contains(out, "circuit_open") || !strings.Contains(out, " in ") {
		t.Errorf("ferry targets:\n%s", out)
	}
	if out := cli("status", "stalled"); !strings.Contains(out, "waiting  target dms is circuit_open") || !strings.Contains(out, "next probe in") {
		t.Errorf("ferry status:\n%s", out)
	}

	ownProbe := *openFor(5 * time.Second).NextProbeAt
	fixed.Store(true)
	pressed := time.Now()
	resp, body := b.do("POST", "/ui/targets/dms/resume", url.Values{"csrf": {csrf}}, http.Header{"X-Ferry-Live": {"1"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "will be probed now") {
		t.Fatalf("probe now: %d %q", resp.StatusCode, body)
	}
	waitFor(t, 30*time.Second, func() bool {
		var j apitypes.Job
		p.get("/v1/jobs/"+ids[0], &j)
		var sum apitypes.BatchSummary
		p.get("/v1/batches/stalled", &sum)
		return sum.ByStatus[apitypes.StatusSuccess].Files > 0
	})
	if delivered := time.Now(); !delivered.Before(ownProbe.Add(-time.Second)) {
		t.Errorf("pressed at %s, first delivery at %s: not before the breaker's own probe at %s", pressed.Format(time.StampMilli), delivered.Format(time.StampMilli), ownProbe.Format(time.StampMilli))
	}
	p.waitFinal(ids, 30*time.Second)
}

// screenshotWaiting saves the batch page of a batch waiting on an open
// circuit (make screenshots).
func screenshotWaiting(t *testing.T, base, key string) {
	ctx, _ := newChrome(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="key"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="key"]`), key),
		chromedp.Click(chromedp.CSS(`form[action="/ui/login"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.targets`)),
		chromedp.Navigate(base+"/ui/batches/stalled"),
		chromedp.WaitVisible(chromedp.CSS(`div.waiting`)),
	)
	if err != nil {
		t.Fatalf("batch page in the browser: %v", err)
	}
	screenshot(ctx, t, "batch-waiting")
}
