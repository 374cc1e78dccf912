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

// closingWatcher notes whether the closing delimiter of a multipart body
// ("--boundary--") went by.
type closingWatcher struct {
	r      io.Reader
	needle []byte
	tail   []byte // the last len(needle)-1 bytes read, to match across reads
	seen   bool
}

func (c *closingWatcher) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.seen {
		// The needle may straddle the previous read and this one.
		edge := append(c.tail, p[:min(n, len(c.needle)-1)]...)
		c.seen = bytes.Contains(edge, c.needle) || bytes.Contains(p[:n], c.needle)
		keep := len(c.needle) - 1
		if n >= keep {
			c.tail = append(c.tail[:0], p[n-keep:n]...)
		} else {
			c.tail = append(c.tail[:0], edge[max(0, len(edge)-keep):]...)
		}
	}
	return n, err
}

// idleBody is a request body that is cut when the client sends nothing for
// the body idle timeout. It wraps r.Body without replacing it: net/http
// must still see its own body type to close, rather than drain, the
// connection of a request refused before its body was read.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (s *Server) idleBody(w http.ResponseWriter, r *http.Request) *idleBody {
	return &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: s.cfg.BodyIdleTimeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
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

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
