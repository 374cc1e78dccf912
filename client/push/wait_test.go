package push

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/apitypes"
)

// TestGroupFailures: the FAILED rows of --wait fall into the server's
// failure groups, placeholders matching what varies, largest first; rows
// no group matches group by their exact error.
func TestGroupFailures(t *testing.T) {
	server := []apitypes.FailureGroup{
		{Group: `send: HTTP 503: busy`, Count: 1},
		{Group: `send: HTTP 422: file "…" refused`, Count: 3},
		{Group: `send: HTTP 422: {"error":"quota exceeded","id":<n>}`, Count: 1},
	}
	row := func(path, err string) apitypes.ReportRow {
		return apitypes.ReportRow{Path: path, Status: apitypes.StatusFailed, LastError: err}
	}
	rows := []apitypes.ReportRow{
		row("a/1.pdf", `send: HTTP 422: file "1.pdf" refused`),
		row("a/2.pdf", "send: HTTP 422: file \"Facture été 2026.pdf\"\nrefused\n"),
		row("a/3.pdf", `send: HTTP 422: file "3.pdf" refused`),
		row("b/4.pdf", `send: HTTP 422: {"error":"quota exceeded","id":123456}`),
		row("b/5.pdf", `send: HTTP 503: busy`),
		row("c/6.pdf", `send: HTTP 503: busy again`), // no group: its own
		{Path: "d/7.pdf", Status: apitypes.StatusCanceled, LastError: "canceled"},
	}
	got := groupFailures(server, rows)
	want := []struct {
		label string
		count int64
		paths []string
	}{
		{`send: HTTP 422: file "…" refused`, 3, []string{"a/1.pdf", "a/2.pdf", "a/3.pdf"}},
		{`send: HTTP 503: busy`, 1, []string{"b/5.pdf"}},
		{`send: HTTP 422: {"error":"quota exceeded","id":<n>}`, 1, []string{"b/4.pdf"}},
		{`send: HTTP 503: busy again`, 1, []string{"c/6.pdf"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		var paths []string
		for _, r := range g.rows {
			paths = append(paths, r.Path)
		}
		if g.label != w.label || g.count != w.count || len(paths) != len(w.paths) {
			t.Errorf("group %d: %q ×%d %v, want %q ×%d %v", i, g.label, g.count, paths, w.label, w.count, w.paths)
			continue
		}
		for j := range paths {
			if paths[j] != w.paths[j] {
				t.Errorf("group %d: paths %v, want %v", i, paths, w.paths)
			}
		}
	}
}

// TestSupersededIsNotAFailure: with --wait, a batch whose jobs ended
// SUCCESS or SUPERSEDED (a version overtaken by a newer one of its
// document before it started) is complete; a FAILED one is not.
func TestSupersededIsNotAFailure(t *testing.T) {
	for _, c := range []struct {
		by   map[apitypes.Status]apitypes.Count
		fail bool
	}{
		{map[apitypes.Status]apitypes.Count{apitypes.StatusSuccess: {Files: 3}, apitypes.StatusSuperseded: {Files: 2}}, false},
		{map[apitypes.Status]apitypes.Count{apitypes.StatusSuccess: {Files: 3}, apitypes.StatusSuperseded: {Files: 1}, apitypes.StatusFailed: {Files: 1}}, true},
	} {
		var out strings.Builder
		p := &pusher{o: Options{Out: &out}.withDefaults()}
		var total int64
		for _, n := range c.by {
			total += n.Files
		}
		p.res.Delivery = &apitypes.BatchSummary{Name: "b", ByStatus: c.by, Total: apitypes.Count{Files: total}}
		_, err := p.finish()
		if got := errors.Is(err, ErrIncomplete); got != c.fail {
			t.Errorf("%v: incomplete %v, want %v (%v)\n%s", c.by, got, c.fail, err, out.String())
		}
		if !strings.Contains(out.String(), fmt.Sprintf("%d SUPERSEDED", c.by[apitypes.StatusSuperseded].Files)) {
			t.Errorf("the summary does not count SUPERSEDED:\n%s", out.String())
		}
	}
	if line := deliveryLine(deliveryState{Success: 3, Superseded: 2}); !strings.Contains(line, "2 superseded") {
		t.Errorf("progress line: %s", line)
	}
}
