package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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
		Pending: s.Pending.Files, FilesPerSecond: s.FilesPerSecond}
	if s.ETASeconds != nil {
		eta := time.Duration(*s.ETASeconds * float64(time.Second))
		d.ETA = &eta
	}
	return d
}

// finish prints the summary and returns ErrIncomplete unless every file
// was accepted (and, with Wait, every job of the batch ended SUCCESS).
func (p *pusher) finish() (Result, error) {
	r := p.result()
	w := p.o.Out
	printUploads(w, r)
	var errs []string
	if n := r.Failed(); n > 0 {
		errs = append(errs, fmt.Sprintf("%d files not accepted", n))
	}
	if d := r.Delivery; d != nil {
		ok := d.ByStatus[apitypes.StatusSuccess].Files
		fmt.Fprintf(w, "deliveries: %d jobs: %d SUCCESS, %d FAILED, %d CANCELED\n", d.Total.Files, ok,
			d.ByStatus[apitypes.StatusFailed].Files, d.ByStatus[apitypes.StatusCanceled].Files)
		if ok != d.Total.Files {
			errs = append(errs, fmt.Sprintf("%d jobs did not end SUCCESS", d.Total.Files-ok))
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

// printUndelivered lists the jobs that did not end SUCCESS, grouped by
// reason.
func printUndelivered(o Options, r Result) {
	w := o.Out
	reasons := map[string]int{}
	for _, u := range r.Undelivered {
		reasons[string(u.Status)+": "+u.LastError]++
	}
	fmt.Fprintln(w, "reasons:")
	for _, k := range slices.SortedFunc(maps.Keys(reasons), func(a, b string) int {
		if c := reasons[b] - reasons[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}) {
		fmt.Fprintf(w, "  %6d × %s\n", reasons[k], termtext.Clean(k))
	}
	for _, u := range r.Undelivered {
		fmt.Fprintf(w, "%-8s %s (job %s, %d attempts): %s\n", u.Status, termtext.Clean(u.Path), u.JobID, u.Attempts, termtext.Clean(u.LastError))
	}
	if d := r.Delivery; d != nil && int64(len(r.Undelivered)) < d.Total.Files-d.ByStatus[apitypes.StatusSuccess].Files {
		fmt.Fprintf(w, "... and more: ferry report %s --status FAILED\n", r.Batch)
	}
	fmt.Fprintf(w, "re-queue the failures with: ferry jobs retry --batch %s [--error SUBSTRING]\n", r.Batch)
}
