package e2e

import (
	"cmp"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ferry-relay/ferry/apitypes"
)

// chromium finds Debian's headless browser (scripts/stack.sh installs
// it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FERRY_SKIP_BROWSER") != "" {
		t.Skip("no chromium and FERRY_SKIP_BROWSER is set")
	}
	t.Fatal("no chromium on PATH: run scripts/stack.sh up (it installs Debian's chromium), or set FERRY_SKIP_BROWSER=1")
	return ""
}

// newChrome starts a headless chromium with a fresh profile and returns a
// browser context (with a deadline) and the errors the pages reported.
func newChrome(t *testing.T) (context.Context, func() []string) {
	if testing.Short() {
		t.Skip("-short: the browser tests start chromium (make test runs them)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	var mu sync.Mutex
	var problems []string
	report := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	// The first call starts the browser, on a context without a deadline
	// (a deadline there would bound the browser's life).
	err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, cmp.Or(a.Description, string(a.Value)))
				}
				report("console." + string(e.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			report("exception: " + msg)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				report("log: " + e.Entry.Text + " " + e.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	enable := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{})
		return err
	})
	if err := chromedp.Do(bctx, enable); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), problems...) }
}

// screenshot saves the page to $FERRY_SCREENSHOTS/name.png when that
// directory is set (make screenshots).
func screenshot(ctx context.Context, t *testing.T, name string) {
	dir := os.Getenv("FERRY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// TestDashboardInBrowser logs in with a key in headless chromium, opens a
// batch with failures, presses "Retry these" on one group, and checks
// through the API that exactly those jobs were re-queued (and, the target
// fixed, delivered), that the page showed it without a reload, and that
// the browser logged no error.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	p, pt, ids := failingBatch(t, "migration 2026")
	p.waitFinal(ids, 30*time.Second)
	d := newDashboard(t, p)
	ctx, problems := newChrome(t)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	err := chromedp.Do(ctx,
		chromedp.Navigate(d.URL+"/ui/"),
		chromedp.WaitVisible(css(`input[name="key"][type="password"]`)),
		chromedp.SendKeys(css(`input[name="key"]`), p.key),
		chromedp.Click(css(`form[action="/ui/login"] button[type="submit"]`)),
		chromedp.WaitVisible(css(`table.targets`)),
	)
	title, _ := chromedp.Run(ctx, chromedp.Text(css(`h1`)))
	if err != nil || title != "Overview" {
		t.Fatalf("log in: %v (title %q)", err, title)
	}
	screenshot(ctx, t, "overview")

	batchURL := d.URL + "/ui/batches/" + url.PathEscape("migration 2026")
	failureRows := `document.querySelectorAll("table.failures tbody tr").length`
	err = chromedp.Do(ctx, chromedp.Navigate(batchURL), chromedp.WaitVisible(css(`table.failures`)))
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[int](failureRows))
	if err != nil || rows != 2 {
		t.Fatalf("batch page: %v (%d failure groups)", err, rows)
	}
	screenshot(ctx, t, "batch")

	// The first group (4 files refused with HTTP 422) is retried with the
	// target fixed.
	group, err := chromedp.Run(ctx, chromedp.Text(css(`table.failures tbody tr:first-child code.reason`)))
	if err != nil || !strings.Contains(group, "HTTP 422") {
		t.Fatalf("first group is %q (%v), want the HTTP 422 one", group, err)
	}
	pt.fixed.Store(true)
	err = chromedp.Do(ctx,
		chromedp.Click(css(`table.failures tbody tr:first-child button`)),
		chromedp.WaitVisible(css(`#flash`)),
	)
	flash, _ := chromedp.Run(ctx, chromedp.Text(css(`#flash`)))
	if err != nil || !strings.Contains(flash, "4 failed jobs re-queued") {
		t.Fatalf("Retry these: %v (flash %q)", err, flash)
	}
	// Through the API: the four refused with 422 were re-queued and, the
	// target fixed, delivered; the two others are still FAILED.
	waitFor(t, 30*time.Second, func() bool {
		n := 0
		for _, id := range ids[:4] {
			var j apitypes.Job
			if p.get("/v1/jobs/"+id, &j); j.Status == apitypes.StatusSuccess {
				n++
			}
		}
		return n == 4
	})
	for _, id := range ids[4:6] {
		var j apitypes.Job
		if p.get("/v1/jobs/"+id, &j); j.Status != apitypes.StatusFailed {
			t.Errorf("job %s of the other group: %s, want FAILED still", id, j.Status)
		}
	}
	// The page shows it by itself: one group left, 7 delivered.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](failureRows+` === 1 &&
		document.querySelector("table.counts").innerText.includes("SUCCESS\t7")`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(css(`#live`)))
		t.Fatalf("the batch page did not refresh by itself: %v\n%s", err, text)
	}
	screenshot(ctx, t, "batch-after-retry")

	if err := chromedp.Do(ctx, chromedp.Navigate(d.URL+"/ui/jobs/"+ids[0]), chromedp.WaitVisible(css(`ol.timeline`))); err != nil {
		t.Fatalf("job page: %v", err)
	}
	screenshot(ctx, t, "job")
	err = chromedp.Do(ctx,
		chromedp.Navigate(d.URL+"/ui/jobs?batch="+url.QueryEscape("migration 2026")+"&status=FAILED"),
		chromedp.WaitVisible(css(`table.jobs`)),
	)
	rows, _ = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.jobs tbody tr").length`))
	if err != nil || rows != 2 {
		t.Fatalf("jobs list: %v (%d rows)", err, rows)
	}
	screenshot(ctx, t, "jobs")
	// A phone's width: the jobs list reads as a list, each job short and
	// its error on screen (it was a 230 px tall row with the error off to
	// the right).
	err = chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(css(`table.jobs`)))
	if err != nil {
		t.Fatal(err)
	}
	phone, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
		const rows = [...document.querySelectorAll("table.jobs tbody tr")];
		const tallest = Math.max(...rows.map(r => r.getBoundingClientRect().height));
		const errs = [...document.querySelectorAll("table.jobs td.why")].filter(e => e.innerText.trim() !== "");
		const off = errs.filter(e => { const b = e.getBoundingClientRect(); return b.width < 200 || b.right > window.innerWidth; }).length;
		return [tallest, errs.length, off, document.documentElement.scrollWidth];
	})()`))
	if err != nil || len(phone) != 4 || phone[0] > 160 || phone[1] != 2 || phone[2] != 0 || phone[3] > 390 {
		t.Errorf("jobs list at 390 px: tallest row %v px, %v errors shown, %v off screen or narrow, page %v px wide (%v)", phone[0], phone[1], phone[2], phone[3], err)
	}
	screenshot(ctx, t, "jobs-phone")
	if os.Getenv("FERRY_SCREENSHOTS") != "" {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(batchURL), chromedp.WaitVisible(css(`table.failures`)))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(ctx, t, "batch-phone")
	}
	if ps := problems(); len(ps) > 0 {
		t.Errorf("the browser reported errors:\n%s", strings.Join(ps, "\n"))
	}
}
