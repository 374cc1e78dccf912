package main

import (
	"fmt"
	"strings"
)

// goal is a figure's target.
type goal struct {
	// kind: "ratio>=", "ratio<=" (the median ratio ferry/limit), "value<"
	// (ferry's median itself), or "" for a figure given for information.
	kind string
	x    float64
	unit string
}

func (g goal) String() string {
	switch g.kind {
	case "ratio>=":
		return fmt.Sprintf("≥ %s×", num(g.x))
	case "ratio<=":
		return fmt.Sprintf("≤ %s×", num(g.x))
	case "value<":
		return fmt.Sprintf("< %s %s", num(g.x), g.unit)
	}
	return ""
}

// row is one line of the results table.
type row struct {
	Figure string
	Unit   string
	Ferry  spread
	// Raw is the limit ferry is compared with (N == 0: none).
	Raw spread
	// Ratio is ferry/raw, computed within each repetition.
	Ratio spread
	Goal  goal
}

func (r row) met() string {
	switch r.Goal.kind {
	case "ratio>=":
		return yesNo(r.Ratio.N > 0 && r.Ratio.Med >= r.Goal.x)
	case "ratio<=":
		return yesNo(r.Ratio.N > 0 && r.Ratio.Med <= r.Goal.x)
	case "value<":
		return yesNo(r.Ferry.N > 0 && r.Ferry.Med < r.Goal.x)
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// report is what a run found.
type report struct {
	rows  []row
	notes []string
	// details are extra sections (markdown), such as the CPU split.
	details []string
}

func (r *report) add(rows ...row)              { r.rows = append(r.rows, rows...) }
func (r *report) note(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }

// table renders the rows as a markdown table.
func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| figure | ferry | raw limit | ratio | target | met? |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, x := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.Figure, x.Ferry.cell(x.Unit), x.Raw.cell(x.Unit),
			x.Ratio.cell("×"), x.Goal, x.met())
	}
	return b.String()
}

// markdown renders the whole report.
func (r *report) markdown(header string) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\n")
	b.WriteString(r.table())
	if len(r.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	for _, d := range r.details {
		b.WriteString("\n" + d)
	}
	return b.String()
}
