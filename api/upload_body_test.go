package api

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The closing delimiter counts only as a line of its own, and only when
// no delimiter line follows it; the answer does not depend on how the
// body's bytes are split into reads.
func TestClosingWatcher(t *testing.T) {
	part := "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"
	for _, tc := range []struct {
		name, body string
		complete   bool
	}{
		{"closed", part + "data\r\n--XB--\r\n", true},
		{"closed without a line break", part + "data\r\n--XB--", true},
		{"closed with padding", part + "data\r\n--XB-- \t\r\n", true},
		{"closed, then an epilogue", part + "data\r\n--XB--\r\nthe end\r\n", true},
		{"closing delimiter in the data, then cut after a delimiter line", part + "x --XB-- y\r\n--XB\r\n", false},
		{"closing delimiter on a line of the data, then cut", part + "x\n--XB--\r\n\r\n--XB\r\n", false},
		{"cut in the next part's headers", part + "data\r\n--XB--\r\n--XB\r\nContent-Type: text/plain\r\n", false},
		{"cut after a delimiter line", part + "data\r\n--XB\r\n", false},
		{"no delimiter at all", "just bytes\r\n", false},
		{"closing delimiter with something after it", part + "data\r\n--XB--x\r\n", false},
		{"a longer boundary is another boundary", part + "data\r\n--XBX--\r\n", false},
		{"padding too long", part + "data\r\n--XB--" + strings.Repeat(" ", 200) + "\r\n", false},
	} {
		for _, split := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"byte by byte", iotest.OneByteReader},
			{"halves", iotest.HalfReader},
		} {
			c := newClosingWatcher(split.r(strings.NewReader(tc.body)), "XB")
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatal(err)
			}
			if got := c.complete(); got != tc.complete {
				t.Errorf("%s, %s: complete = %v, want %v", tc.name, split.name, got, tc.complete)
			}
		}
	}
}
