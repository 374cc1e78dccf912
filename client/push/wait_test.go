package push

import (
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
