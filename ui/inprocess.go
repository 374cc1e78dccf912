package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// inProcess is an http.RoundTripper that serves requests with the API's
// handler in this process: the dashboard speaks to the API as the CLI
// does, through package client, so every rule of the API (keys, tenants,
// roles, validation) applies to it unchanged, without a network hop. The
// answer streams through a pipe: a CSV report of a million rows is never
// held in memory.
type inProcess struct {
	api http.Handler
}

type remoteAddrKey struct{}

// withRemoteAddr makes in-process requests carry the browser's address,
// for the API's logs, limits and audit.
func withRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, addr)
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	sreq := req.Clone(req.Context())
	sreq.RequestURI = req.URL.RequestURI()
	if addr, ok := req.Context().Value(remoteAddrKey{}).(string); ok {
		sreq.RemoteAddr = addr
	} else {
		sreq.RemoteAddr = "127.0.0.1:0"
	}
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				// http.ErrAbortHandler and the like: the client sees a
				// broken transfer, as over the network.
				w.start(http.StatusInternalServerError)
				pw.CloseWithError(fmt.Errorf("api handler: %v", v))
				return
			}
			w.start(http.StatusOK)
			pw.Close()
		}()
		t.api.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.code, http.StatusText(w.code)), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the ResponseWriter of an in-process request.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	code   int
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) start(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) WriteHeader(code int) { w.start(code) }

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	n, err := w.pw.Write(b)
	if errors.Is(err, io.ErrClosedPipe) {
		return n, http.ErrAbortHandler
	}
	return n, err
}

// Flush is a no-op: every write goes through the pipe at once.
func (w *pipeWriter) Flush() {}
