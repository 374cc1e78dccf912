package storage_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/storage"
)

// cutWriter passes the first limit bytes of a response on, then breaks the
// connection, as a storage server that dies mid-response does.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.ResponseWriter.Write(p[:w.left])
		w.left -= n
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}

func (w *cutWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestOpenResumesABrokenRead puts a proxy in front of MinIO that breaks the
// first two GETs of an object mid-body: the reader Open returns still
// yields the whole object, asking for the rest with ranged GETs.
func TestOpenResumesABrokenRead(t *testing.T) {
	t.Parallel()
	st := testenv.Storage(t)
	ctx := testenv.Context(t)
	data := bytes.Repeat([]byte("ferry-resume-"), 40000) // 520 kB
	if _, err := st.Put(ctx, "objects/resume", bytes.NewReader(data), int64(len(data)), 1<<30, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.S3Config()
	backend := &url.URL{Scheme: "http", Host: cfg.Endpoint}
	var gets atomic.Int32
	var ranges []string
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend)
		r.Out.Host = r.In.Host // the request is signed for the proxy's host
	}}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/objects/resume") {
			if rg := r.Header.Get("Range"); rg != "" {
				ranges = append(ranges, rg)
			}
			switch gets.Add(1) {
			case 1:
				w = &cutWriter{ResponseWriter: w, left: 100000}
			case 2:
				w = &cutWriter{ResponseWriter: w, left: 200000}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	cfg.Endpoint, cfg.Bucket = strings.TrimPrefix(proxy.URL, "http://"), st.Bucket()
	via, err := storage.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := via.Open(ctx, "objects/resume")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the object's %d", len(got), len(data))
	}
	if gets.Load() != 3 || len(ranges) != 2 || ranges[0] != "bytes=100000-" {
		t.Fatalf("%d GETs, ranges %v: want the first broken at 100000 and two resumes", gets.Load(), ranges)
	}
}

// TestPutRetriesABrokenRequest breaks the first PUT of a small file at the
// storage server (it reads the body, then drops the connection without an
// answer): the file is stored anyway, by the client's retry.
func TestPutRetriesABrokenRequest(t *testing.T) {
	t.Parallel()
	st := testenv.Storage(t)
	ctx := testenv.Context(t)
	cfg := testenv.S3Config()
	backend := &url.URL{Scheme: "http", Host: cfg.Endpoint}
	var puts atomic.Int32
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend)
		r.Out.Host = r.In.Host
	}}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/objects/retry") && puts.Add(1) == 1 {
			_, _ = io.Copy(io.Discard, r.Body)
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	cfg.Endpoint, cfg.Bucket = strings.TrimPrefix(proxy.URL, "http://"), st.Bucket()
	via, err := storage.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 64<<10)
	if _, err := via.Put(ctx, "objects/retry", bytes.NewReader(data), -1, 1<<30, "application/octet-stream"); err != nil {
		t.Fatalf("put: %v", err)
	}
	rc, err := st.Open(ctx, "objects/retry")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) || puts.Load() < 2 {
		t.Fatalf("stored %d bytes after %d PUTs", len(got), puts.Load())
	}
}
