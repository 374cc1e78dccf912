package termtext

import "testing"

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want, text string }{
		{"plain name.pdf", "plain name.pdf", "plain name.pdf"},
		{"évaluation 2026.pdf", "évaluation 2026.pdf", "évaluation 2026.pdf"},
		{"\x1b]0;pwned\x07x", `\x1b]0;pwned\x07x`, `\x1b]0;pwned\x07x`},
		{"a\x1b[2Jb", `a\x1b[2Jb`, `a\x1b[2Jb`},
		{"line1\nline2\tx", `line1\x0aline2\x09x`, "line1\nline2\tx"},
		{"cr\rover", `cr\x0dover`, `cr\x0dover`},
		{"c1\u009bm", `c1\x9bm`, `c1\x9bm`},
		{"invoice\u202efdp.exe", `invoice\u202efdp.exe`, `invoice\u202efdp.exe`},
		{"del\x7f", `del\x7f`, `del\x7f`},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := CleanText(c.in); got != c.text {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.text)
		}
	}
}
