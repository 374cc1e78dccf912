package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/internal/termtext"
)

// wait polls the batch's summary until every job is final, then collects
// the jobs that did not end SUCCESS.
func (p *pusher) wait(ctx context.Context) error {
	var last apitypes.BatchSummary
	var shown atomic.Pointer[apitypes.BatchSummary] // read by the progress display
	shown.Store(&apitypes.BatchSummary{})
	stop := p.showProgress(func(m meter) { m.delivery(deliveryOf(*shown.Load())) })
	defer stop()
	var failures int
	for {
		sum, err := p.c.Batch(ctx, p.res.Batch)
		switch {
		case err == nil:
			last, failures = sum, 0
			shown.Store(&sum)
		case client.Retryable(ctx, err) && failures < 30:
			failures++ // the server restarts: keep watching
		case ctx.Err() != nil:
			return fmt.Errorf("%w: stopped watching batch %q; its jobs go on (ferry status %s)", ErrInterrupted, p.res.Batch, p.res.Batch)
		default:
			return err
		}
		if err == nil && sum.Done() {
			break
		}
		t := time.NewTimer(p.o.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: stopped watching batch %q; its jobs go on (ferry status %s)", ErrInterrupted, p.res.Batch, p.res.Batch)
		case <-t.C:
		}
	}
	p.res.Delivery = &last
	if last.ByStatus[apitypes.StatusFailed].Files > 0 {
		// The server's groups, as on the dashboard; without them (an
		// older server) the rows group by their exact error.
		if gs, err := p.c.FailureGroups(ctx, p.res.Batch); err == nil {
			p.res.FailureGroups = gs
		}
	}
	for _, st := range []apitypes.Status{apitypes.StatusFailed, apitypes.StatusCanceled} {
		if last.ByStatus[st].Files == 0 {
			continue
		}
		err := p.c.ReportRows(ctx, p.res.Batch, st, func(r apitypes.ReportRow) error {
			if len(p.res.Undelivered) >= deliveryFailuresListed {
				return errEnough
			}
			p.res.Undelivered = append(p.res.Undelivered, r)
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return fmt.Errorf("listing the jobs that failed: %w", err)
		}
	}
	return nil
}

var errEnough = errors.New("enough rows")

func deliveryOf(s apitypes.BatchSummary) deliveryState {
	d := deliveryState{Total: s.Total.Files, Final: s.Final.Files, Success: s.ByStatus[apitypes.StatusSuccess].Files,
		Failed: s.ByStatus[apitypes.StatusFailed].Files, Canceled: s.ByStatus[apitypes.StatusCanceled].Files,
		Superseded: s.ByStatus[apitypes.StatusSuperseded].Files, Pending: s.Pending.Files, FilesPerSecond: s.FilesPerSecond}
	if s.ETASeconds != nil {
		eta := time.Duration(*s.ETASeconds * float64(time.Second))
		d.ETA = &eta
	}
	return d
}

// finish prints the summary and returns ErrIncomplete unless every file
// was accepted (and, with Wait, every job of the batch ended SUCCESS, or
// SUPERSEDED).
func (p *pusher) finish() (Result, error) {
	r := p.result()
	w := p.o.Out
	printUploads(w, r)
	var errs []string
	if n := r.Failed(); n > 0 {
		errs = append(errs, fmt.Sprintf("%d files not accepted", n))
	}
	if d := r.Delivery; d != nil {
		// A SUPERSEDED job is a version overtaken by a newer one of its
		// document before it started: nothing is missing at the target.
		ok := d.ByStatus[apitypes.StatusSuccess].Files
		superseded := d.ByStatus[apitypes.StatusSuperseded].Files
		fmt.Fprintf(w, "deliveries: %d jobs: %d SUCCESS, %d FAILED, %d CANCELED, %d SUPERSEDED\n", d.Total.Files, ok,
			d.ByStatus[apitypes.StatusFailed].Files, d.ByStatus[apitypes.StatusCanceled].Files, superseded)
		if ok+superseded != d.Total.Files {
			errs = append(errs, fmt.Sprintf("%d jobs did not end SUCCESS", d.Total.Files-ok-superseded))
			printUndelivered(p.o, r)
		}
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("%w: %s", ErrIncomplete, strings.Join(errs, "; "))
	}
	return r, nil
}

// printUploads says what became of the files: how many were accepted,
// and why the others were not.
func printUploads(w io.Writer, r Result) {
	fmt.Fprintf(w, "batch %q → target %s: %d files (%s): %d accepted (%d uploaded, %s sent; %d already accepted), %d not accepted\n",
		r.Batch, r.Target, r.Files, bytesText(r.Bytes), r.Uploaded+r.Skipped, r.Uploaded, bytesText(r.SentBytes), r.Skipped, r.Failed())
	if r.Symlinks > 0 {
		fmt.Fprintf(w, "%d symbolic links skipped (--follow-symlinks follows them)\n", r.Symlinks)
	}
	for _, pr := range r.Problems {
		fmt.Fprintln(w, termtext.Clean(fmt.Sprint(pr)))
	}
}

// printUndelivered says why the jobs that did not end SUCCESS failed: in
// groups by reason, largest first, as the dashboard's batch page shows
// them, with a count and a few files of each; the report lists them all.
func printUndelivered(o Options, r Result) {
	w := o.Out
	d := r.Delivery
	failed, canceled := d.ByStatus[apitypes.StatusFailed].Files, d.ByStatus[apitypes.StatusCanceled].Files
	if failed > 0 {
		fmt.Fprintf(w, "%d FAILED, by reason:\n", failed)
		for _, g := range groupFailures(r.FailureGroups, r.Undelivered) {
			fmt.Fprintf(w, "  %6d × %s\n", g.count, termtext.Clean(g.label))
			for i, u := range g.rows {
				if i == examplesPerGroup {
					break
				}
				fmt.Fprintf(w, "           e.g. %s (job %s): %s\n", termtext.Clean(u.Path), u.JobID, termtext.Clean(shorten(u.LastError, 120)))
			}
		}
	}
	if canceled > 0 {
		fmt.Fprintf(w, "%d CANCELED\n", canceled)
	}
	fmt.Fprintf(w, "every file and its error: ferry report %s --status FAILED > failed.csv\n", r.Batch)
	fmt.Fprintf(w, "re-queue the failures with: ferry jobs retry --batch %s [--error SUBSTRING]\n", r.Batch)
}

// examplesPerGroup is how many files of each failure group are shown.
const examplesPerGroup = 3

// failureGroup is one reason with its count and the jobs seen of it.
type failureGroup struct {
	label string
	count int64
	rows  []apitypes.ReportRow
}

// groupFailures puts the FAILED rows in the server's failure groups (GET
// /v1/batches/{name}/failures): a row belongs to the group whose label
// matches its error, placeholders matching anything. Without groups from
// the server, rows group by their exact error.
func groupFailures(server []apitypes.FailureGroup, rows []apitypes.ReportRow) []failureGroup {
	var out []failureGroup
	var pats []*regexp.Regexp
	for _, g := range server {
		out = append(out, failureGroup{label: g.Group, count: g.Count})
		pats = append(pats, groupPattern(g.Group))
	}
	byError := map[string]int{}
	for _, u := range rows {
		if u.Status != apitypes.StatusFailed {
			continue
		}
		i := slices.IndexFunc(pats, func(re *regexp.Regexp) bool { return re.MatchString(u.LastError) })
		if i < 0 {
			j, ok := byError[u.LastError]
			if !ok {
				j = len(out)
				byError[u.LastError] = j
				out = append(out, failureGroup{label: u.LastError})
			}
			if j >= len(server) {
				out[j].count++
			}
			i = j
		}
		out[i].rows = append(out[i].rows, u)
	}
	slices.SortStableFunc(out, func(a, b failureGroup) int { return cmp.Compare(b.count, a.count) })
	return out
}

// placeholder matches what the server's grouping put in place of what
// varies (migration 010).
var placeholder = regexp.MustCompile(`…|<id>|<n>|<hex>|<path>|<file>`)

// groupPattern turns a failure group's label into a pattern of the errors
// it holds. A label cut at 300 characters matches errors that start so.
func groupPattern(label string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^\s*`)
	last := 0
	for _, m := range placeholder.FindAllStringIndex(label, -1) {
		b.WriteString(spaced(label[last:m[0]]))
		b.WriteString(`.*?`)
		last = m[1]
	}
	b.WriteString(spaced(label[last:]))
	if utf8.RuneCountInString(label) < 300 {
		b.WriteString(`\s*$`)
	}
	return regexp.MustCompile(b.String())
}

// spaced quotes s for a pattern, a run of white space matching any run.
func spaced(s string) string {
	parts := strings.Fields(s)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	out := strings.Join(parts, `\s+`)
	if s != "" && strings.TrimLeftFunc(s, unicode.IsSpace) != s {
		out = `\s+` + out
	}
	if s != "" && strings.TrimRightFunc(s, unicode.IsSpace) != s && len(parts) > 0 {
		out += `\s+`
	}
	return out
}

// shorten cuts s to n runes.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
