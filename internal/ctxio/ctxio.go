// Package ctxio holds I/O that a context can end: a reader that stops at
// the next Read once its context is done, so that an interrupt does not
// wait for a large file to be read through (hashing before an upload).
package ctxio

import (
	"context"
	"io"
)

// Reader reads from r until ctx ends; then every Read returns ctx's error.
func Reader(ctx context.Context, r io.Reader) io.Reader { return &reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
