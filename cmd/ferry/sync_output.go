package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/internal/termtext"
)

// syncPrinter shows what sync does: on a terminal, a status line on
// standard error with the notable events above it; otherwise one line per
// change and event on standard output; with --json, JSON lines.
type syncPrinter struct {
	mu       sync.Mutex
	out, err io.Writer
	json     bool
	terminal bool
	// lineShown: the status line is on the terminal and must be cleared
	// before anything else is written there.
	lineShown bool
}

func newSyncPrinter(out, errw io.Writer, asJSON bool) *syncPrinter {
	return &syncPrinter{out: out, err: errw, json: asJSON, terminal: !asJSON && isTerminal(errw)}
}

// notable are the events a terminal shows above the status line.
var notable = map[string]bool{
	syncer.EventRefused: true, syncer.EventRetrying: true, syncer.EventResumed: true, syncer.EventGuard: true,
	syncer.EventNoDelete: true, syncer.EventGone: true, syncer.EventWarning: true, syncer.EventFailed: true,
	syncer.EventUnsettled: true,
}

// event writes one event.
func (p *syncPrinter) event(ev syncer.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.json:
		_ = json.NewEncoder(p.out).Encode(ev)
	case p.terminal:
		if notable[ev.Kind] {
			p.clearLine()
			fmt.Fprintln(p.err, eventText(ev))
		}
	default:
		fmt.Fprintln(p.out, eventText(ev))
	}
}

// eventText is one line of an event.
func eventText(ev syncer.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-9s", ev.Time.UTC().Format(time.RFC3339), ev.Kind)
	if ev.Path != "" {
		b.WriteString(" " + termtext.CleanText(ev.Path))
	}
	if ev.Version > 0 {
		fmt.Fprintf(&b, " version %d", ev.Version)
	}
	if ev.Job != "" {
		b.WriteString(" job " + ev.Job)
	}
	if ev.Count > 0 && ev.Message == "" {
		fmt.Fprintf(&b, " %d", ev.Count)
	}
	if ev.Message != "" {
		b.WriteString(": " + termtext.CleanText(ev.Message))
	}
	return b.String()
}

// statusLine redraws the terminal's status line.
func (p *syncPrinter) statusLine(st syncer.Status) {
	if !p.terminal {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.err, "\r\033[K"+statusText(st))
	p.lineShown = true
}

func statusText(st syncer.Status) string {
	s := fmt.Sprintf("tracked %d · pending %d · sending %d · accepted %d · delivered %d · failed %d",
		st.Tracked, st.Pending, st.Sending, st.Accepted, st.Delivered, st.Failed+st.Refused)
	if !st.LastChange.IsZero() {
		s += " · last change " + st.LastChange.Local().Format("15:04:05")
	}
	if !st.NextRescan.IsZero() {
		s += " · next rescan " + st.NextRescan.Local().Format("15:04")
	}
	if st.Retrying {
		s += " · ferry unreachable, retrying"
	}
	return s
}

func (p *syncPrinter) clearLine() {
	if p.lineShown {
		fmt.Fprint(p.err, "\r\033[K")
		p.lineShown = false
	}
}

// summary writes what a sync did.
func (p *syncPrinter) summary(s syncer.Summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLine()
	if p.json {
		_ = json.NewEncoder(p.out).Encode(struct {
			Event string `json:"event"`
			syncer.Summary
		}{"summary", s})
		return
	}
	fmt.Fprintf(p.out, "sync: %d accepted, %d unchanged, %d deleted, %d refused; %d tracked, %d pending; %d files hashed (%d bytes)\n",
		s.Accepted, s.Unchanged, s.Deleted, s.Refused, s.Tracked, s.Pending, s.Hashed, s.HashedBytes)
	if s.Unsettled > 0 {
		fmt.Fprintf(p.out, "sync: %d files still being written were not taken\n", s.Unsettled)
	}
	if s.HeldDeletes > 0 {
		fmt.Fprintf(p.out, "sync: %d deletes held back by --max-delete\n", s.HeldDeletes)
	}
}

// logWriter is where warnings go: standard error, clearing the status
// line first.
func (p *syncPrinter) logWriter() io.Writer { return logTo{p} }

type logTo struct{ p *syncPrinter }

func (l logTo) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.p.clearLine()
	return l.p.err.Write(b)
}
