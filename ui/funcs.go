package ui

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

// parseTemplates parses each page with the layout.
func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"bytes": humanBytes, "num": humanNum, "when": when, "ago": ago, "eta": eta,
		"rate": rate, "pathEscape": url.PathEscape, "queryEscape": url.QueryEscape,
		"sparkline": sparkline, "chart": throughputChart, "stateLabel": stateLabel,
		"count":      func(s apitypes.BatchSummary, st apitypes.Status) apitypes.Count { return s.ByStatus[st] },
		"final":      func(s apitypes.Status) bool { return s.Final() },
		"retryable":  func(s apitypes.Status) bool { return s == apitypes.StatusFailed || s == apitypes.StatusCanceled },
		"cancelable": func(s apitypes.Status) bool { return s == apitypes.StatusQueued || s == apitypes.StatusRetrying },
		"lower":      func(s apitypes.Status) string { return strings.ToLower(string(s)) },
		"ms":         func(d int64) string { return (time.Duration(d) * time.Millisecond).String() },
		"shortSHA":   func(s string) string { return s[:min(len(s), 12)] },
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "batch", "jobs", "job", "documents", "document", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// humanBytes writes a size in binary units: 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanNum writes a count with thin groups: 1 234 567.
func humanNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u202f')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// when writes a time in UTC, to the second.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago writes how long ago t was: 5 s, 3 min, 2 h, 4 d.
func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	d := time.Since(*t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d d ago", int(d.Hours()/24))
}

// eta writes a time left.
func eta(s *float64) string {
	if s == nil || math.IsInf(*s, 0) || math.IsNaN(*s) {
		return "—"
	}
	d := time.Duration(*s * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(math.Ceil(d.Minutes())))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

// rate writes files and bytes per second.
func rate(files, bytesPerSec float64) string {
	if files == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f files/s · %s/s", files, humanBytes(int64(bytesPerSec)))
}

// stateLabel names a target state for people.
func stateLabel(s string) string {
	switch s {
	case "ok":
		return "ok"
	case "circuit_open":
		return "circuit open"
	case "paused_credentials":
		return "paused: credentials refused"
	}
	return strings.ReplaceAll(s, "_", " ")
}

// sparkline draws counts as a small SVG line, newest on the right. The
// markup is built from numbers only.
func sparkline(counts []int64) template.HTML {
	const w, h = 120.0, 24.0
	if len(counts) < 2 {
		return ""
	}
	var peak, total int64
	for _, c := range counts {
		peak = max(peak, c)
		total += c
	}
	var pts strings.Builder
	for i, c := range counts {
		x := w * float64(i) / float64(len(counts)-1)
		y := h - 1
		if peak > 0 {
			y = h - 1 - (h-2)*float64(c)/float64(peak)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%d deliveries in the last %d minutes, at most %d a minute"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="%s"/></svg>`,
		w, h, w, h, total, len(counts), peak, strings.TrimSpace(pts.String())))
}

// throughputChart draws a batch's deliveries per minute over its life:
// successes as bars, failures as a line.
func throughputChart(pts []apitypes.ThroughputPoint) template.HTML {
	if len(pts) == 0 {
		return `<p class="muted">Nothing delivered yet.</p>`
	}
	const w, h, pad = 720.0, 160.0, 24.0
	start := pts[0].At
	end := pts[len(pts)-1].At.Add(time.Duration(pts[len(pts)-1].Seconds) * time.Second)
	span := end.Sub(start).Seconds()
	var peak float64
	for _, p := range pts {
		peak = max(peak, perMinute(p.Success, p.Seconds), perMinute(p.Failed, p.Seconds))
	}
	if peak == 0 {
		peak = 1
	}
	x := func(t time.Time) float64 { return pad + (w-2*pad)*t.Sub(start).Seconds()/span }
	y := func(v float64) float64 { return h - pad - (h-2*pad)*v/peak }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="Deliveries per minute from %s to %s, at most %.0f a minute">`,
		w, h, start.UTC().Format("15:04"), end.UTC().Format("15:04"), peak)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" class="axis"/>`, pad, h-pad, w-pad, h-pad)
	var fail strings.Builder
	for _, p := range pts {
		x0 := x(p.At)
		x1 := x(p.At.Add(time.Duration(p.Seconds) * time.Second))
		v := perMinute(p.Success, p.Seconds)
		fmt.Fprintf(&b, `<rect class="ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %.1f delivered/min</title></rect>`,
			x0, y(v), max(x1-x0-1, 1), h-pad-y(v), p.At.UTC().Format("15:04"), v)
		fmt.Fprintf(&fail, "%.1f,%.1f ", (x0+x1)/2, y(perMinute(p.Failed, p.Seconds)))
	}
	if len(pts) > 1 {
		fmt.Fprintf(&b, `<polyline class="failed" fill="none" points="%s"/>`, strings.TrimSpace(fail.String()))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="label">%s</text><text x="%.0f" y="%.0f" class="label" text-anchor="end">%s</text>`,
		pad, h-6, start.UTC().Format("Jan 2 15:04"), w-pad, h-6, end.UTC().Format("Jan 2 15:04"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="label">%.0f/min</text></svg>`, pad, pad-8, peak)
	return template.HTML(b.String())
}

func perMinute(n int64, seconds int) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) * 60 / float64(seconds)
}
