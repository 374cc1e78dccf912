// Package termtext makes text from elsewhere (file names, batch names,
// errors a server sent) safe to print on a terminal: control characters,
// which could move the cursor, rewrite the screen or set the window title,
// are shown escaped instead of being sent to the terminal.
package termtext

import (
	"fmt"
	"strings"
)

// Clean returns s with every control character escaped: C0 and C1
// controls, DEL, and the bidirectional overrides that make text read in
// another order than it is. Newlines and tabs are escaped too: a name
// prints on one line.
func Clean(s string) string { return clean(s, false) }

// CleanText is Clean for multi-line text: it keeps newlines and tabs.
func CleanText(s string) string { return clean(s, true) }

func clean(s string, keepLines bool) string {
	if strings.IndexFunc(s, func(r rune) bool { return unsafe(r, keepLines) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !unsafe(r, keepLines) {
			b.WriteRune(r)
			continue
		}
		if r < 0x100 {
			fmt.Fprintf(&b, `\x%02x`, r)
		} else {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unsafe(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0xfffd:
		return false
	}
	return false
}
