package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The rules of an upload's body: when it is complete, and how long it may
// send nothing.

// closingWatcher follows the delimiter lines of a multipart body (lines
// that begin with "--boundary") as its bytes go by, and says whether the
// last one was the closing delimiter ("--boundary--", RFC 2046 §5.1.1).
// mime/multipart answers a bare io.EOF both for that delimiter and for a
// body cut right after a delimiter line (reading the next part's
// headers); only the first is complete. The closing delimiter counts only
// as a line of its own: "--boundary--" inside a file's bytes is data (the
// part's data ends only at a line that begins with the delimiter), and
// any delimiter line after it (a part begun, then cut) makes the body
// incomplete again.
type closingWatcher struct {
	r    io.Reader
	dash []byte // "--boundary"

	// line holds the start of the current line while it may be a
	// delimiter line, at most lineMax bytes.
	line    []byte
	lineMax int
	// midLine: the current line began in an earlier read.
	midLine bool
	// other: the current line is not a delimiter line.
	other bool
	// final: the last delimiter line seen was the closing one.
	final bool
}

// closingPadding bounds the transport padding (spaces or tabs) kept
// after a closing delimiter.
const closingPadding = 64

func newClosingWatcher(r io.Reader, boundary string) *closingWatcher {
	dash := []byte("--" + boundary)
	// The delimiter, "--", the padding and CRLF.
	return &closingWatcher{r: r, dash: dash, lineMax: len(dash) + 2 + closingPadding + 2}
}

func (c *closingWatcher) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.scan(p[:n])
	return n, err
}

// scan follows the lines of b, the next bytes of the body.
func (c *closingWatcher) scan(b []byte) {
	for len(b) > 0 {
		if !c.midLine {
			c.midLine, c.other, c.line = true, false, c.line[:0]
		}
		end := bytes.IndexByte(b, '\n')
		chunk := b
		if end >= 0 {
			chunk = b[:end+1]
		}
		if !c.other {
			c.keep(chunk)
		}
		if end < 0 {
			return
		}
		c.endLine()
		b = b[end+1:]
	}
}

// keep adds chunk to the current line while it may be a delimiter line.
func (c *closingWatcher) keep(chunk []byte) {
	if have := len(c.line); have < len(c.dash) {
		k := min(len(chunk), len(c.dash)-have)
		if !bytes.Equal(chunk[:k], c.dash[have:have+k]) {
			c.other = true // not a delimiter line: skip the rest of it
			return
		}
	}
	room := c.lineMax - len(c.line)
	c.line = append(c.line, chunk[:min(len(chunk), room)]...)
	if len(chunk) > room {
		c.line = append(c.line[:len(c.dash)], 'x') // too long to be the closing delimiter
	}
}

// endLine judges the line just ended (or, at the end of the body, the
// last line, which may lack its line break).
func (c *closingWatcher) endLine() {
	c.midLine = false
	if c.other || len(c.line) < len(c.dash) {
		return
	}
	closing, ok := bytes.CutPrefix(c.line[len(c.dash):], []byte("--"))
	closing = bytes.TrimLeft(closing, " \t")
	c.final = ok && (len(closing) == 0 || string(closing) == "\n" || string(closing) == "\r\n")
}

// complete reports whether the body read so far ended with its closing
// delimiter, only the epilogue after it.
func (c *closingWatcher) complete() bool {
	if c.midLine {
		c.endLine()
	}
	return c.final
}

// maxEpilogue bounds what a multipart body may hold after its closing
// delimiter (RFC 2046's epilogue, which ferry reads and ignores).
const maxEpilogue = 64 << 10

// readEpilogue reads the rest of a multipart body whose parser has seen
// its end: to the end of the body, which must be as long as it said
// (Content-Length) and end with the closing delimiter and at most
// maxEpilogue bytes after it.
func readEpilogue(c *closingWatcher) error {
	n, err := io.Copy(io.Discard, io.LimitReader(c, maxEpilogue+1))
	switch {
	case err != nil:
		return badRequest("malformed multipart body: it ends early: %v", err)
	case n > maxEpilogue:
		return badRequest("malformed multipart body: more than %d bytes after its closing boundary", maxEpilogue)
	case !c.complete():
		return badRequest("malformed multipart body: it ends without its closing boundary")
	}
	return nil
}

// idleBody is a request body that is cut when the client sends nothing for
// the body idle timeout. It wraps r.Body without replacing it: net/http
// must still see its own body type to close, rather than drain, the
// connection of a request refused before its body was read.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	// ended: the body was read to its end.
	ended bool
}

func (s *Server) idleBody(w http.ResponseWriter, r *http.Request) *idleBody {
	return &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: s.cfg.BodyIdleTimeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	b.ended = b.ended || errors.Is(err, io.EOF)
	if err != nil && !errors.Is(err, io.EOF) && b.idle > 0 && isTimeout(err) {
		err = fmt.Errorf("nothing received for %s: %w", b.idle, err)
	}
	return n, err
}

// done lifts the deadline once the body is read.
func (b *idleBody) done() {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

// refused says that the request is refused: if its body was not read to
// the end, the answer closes the connection, since net/http would
// otherwise read up to 256 KiB more of it (as slowly as the client cares
// to send) before answering, in the hope of keeping the connection.
func (b *idleBody) refused(w http.ResponseWriter) {
	if !b.ended {
		w.Header().Set("Connection", "close")
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
