package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "ferry chaos run: %d files, seed %d, %s\n", r.Files, r.Seed, r.Duration.Round(time.Second))
	if r.Docs != nil {
		fmt.Fprintf(w, "documents: %d, each sent in %d versions of distinct contents (http, versions: put)\n", r.Docs.Documents, r.Docs.VersionsEach)
	}
	var faults []string
	for _, k := range faultOrder {
		if n := r.Faults[k]; n > 0 {
			faults = append(faults, fmt.Sprintf("%s %d", k, n))
		}
	}
	if r.Topology != "" {
		fmt.Fprintf(w, "installation: %s\n", r.Topology)
	}
	fmt.Fprintf(w, "faults injected: %s\n", strings.Join(faults, ", "))
	if r.LeaderKilled != "" {
		fmt.Fprintf(w, "  NATS server %s led the stream and was killed -9 for good; stream at the end: %s\n", r.LeaderKilled, r.StreamEnd)
	}
	if r.DriveRemoved != "" {
		fmt.Fprintf(w, "  MinIO drive %s taken away for good\n", r.DriveRemoved)
	}
	row := func(name string, v any, note string) {
		if note != "" {
			note = "  (" + note + ")"
		}
		fmt.Fprintf(w, "  %-38s %8v%s\n", name, v, note)
	}
	if r.Neighbour != "" {
		fmt.Fprintf(w, "  second installation on the same NATS server: %s\n", r.Neighbour)
	}
	row("files accepted", r.Accepted, fmt.Sprintf("%d upload attempts retried", r.UploadRetries))
	row("uploads cut mid-body by a kill", r.CutUploads, fmt.Sprintf("%d left a job; must be 0", r.CutWithJob))
	row("jobs", r.Jobs, fmt.Sprintf("%d without an accepted upload, %d not matching their file; must be 0",
		r.JobsWithoutFile, r.JobsMismatched))
	row("jobs SUCCESS", r.Success, "")
	if r.Docs != nil {
		row("jobs SUPERSEDED", r.Superseded, "a newer version accepted before they started; never delivered")
	}
	row("jobs FAILED", r.Failed, fmt.Sprintf("%d on the refusing target, %d elsewhere; must be 0", r.FailedExpected, r.FailedUnexpected))
	row("files missing at the target", r.Missing, "must be 0")
	row("deliveries with wrong bytes", r.Corrupt, "must be 0")
	row("extra deliveries at the target", r.Extra, fmt.Sprintf("worker kills %d; each follows a delivery cut short: %d of %d",
		r.WorkerKills, r.ExtraExplained, r.Extra))
	row("jobs stuck in a non-final state", r.Stuck, "must be 0")
	r.Docs.print(row)
	row("deliveries cut short (lease expired)", r.Abandoned, fmt.Sprintf("attempts ABANDONED: %d by killed workers, %d by workers cut off from Postgres",
		r.AbandonedKill, r.Abandoned-r.AbandonedKill))
	row("deliveries handed back on SIGTERM", r.HandedBack, fmt.Sprintf("attempts INTERRUPTED; %d graceful worker stops", r.WorkerStops))
	row("MinIO incomplete uploads left", r.Incomplete, "")
	row("MinIO objects without a job", r.Orphans, "")
	row("messages left in the queue", r.QueueLeft, "")
	for _, t := range r.targets {
		note := "no max_in_flight"
		if n := r.MaxInFlight[t]; n > 0 {
			note = fmt.Sprintf("max_in_flight %d, across every worker process", n)
		}
		row("most in flight at once to "+t, r.PeakInFlight[t], note)
	}
	var outs []string
	for k, n := range r.Outcomes {
		outs = append(outs, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(outs)
	fmt.Fprintf(w, "attempt outcomes: %s\n", strings.Join(outs, ", "))
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if len(r.Problems) == 0 {
		if r.Docs != nil {
			fmt.Fprintln(w, "result: PASS (0 lost, 0 stuck; every document holds exactly its accepted, not superseded versions, each once, in order)")
			return
		}
		fmt.Fprintln(w, "result: PASS (0 lost, 0 stuck, at most one extra copy per delivery cut short)")
		return
	}
	fmt.Fprintf(w, "result: FAIL, %d problems:\n", len(r.Problems))
	for _, p := range r.Problems[:min(len(r.Problems), 30)] {
		fmt.Fprintln(w, "  -", p)
	}
}
