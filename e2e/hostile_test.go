package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// smallSendBuffers is a listener whose connections have small send
// buffers (the kernel doubles what is asked).
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// stalledReader asks for path and never reads the answer: its socket's
// receive buffer is small, so the server's writes block soon.
func stalledReader(t *testing.T, p *pipeline, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", p.api.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: ferry\r\nAuthorization: Bearer %s\r\n\r\n", path, p.key)
	return c
}

// bigBatch records n jobs in batch straight in the store (what is tested is
// reading them).
func (p *pipeline) bigBatch(batch string, n int) {
	p.t.Helper()
	_, err := p.pool.Exec(context.Background(), `
		INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key, status, max_attempts, last_error)
		SELECT gen_random_uuid(), 'sink', $1, 'folder/file-' || i || '.pdf', 'application/pdf', i,
			repeat('ab', 32), 'objects/none-' || i, 'FAILED', 1, 'HTTP 422: the document system refused file ' || i
		FROM generate_series(1, $2) i`, batch, n)
	if err != nil {
		p.t.Fatal(err)
	}
}

// TestStalledReportReadersLeaveUploadsWorking is the "must show":
// 50 clients that ask for a big report and stop reading hold no database
// connection, so uploads and status reads keep working.
func TestStalledReportReadersLeaveUploadsWorking(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: sink, kind: http, url: %q}\n", base+"/ok/s"),
		pipelineOptions{smallSendBuffers: true, reportWrite: time.Minute, noWorker: true})
	p.bigBatch("big", 5000) // a report of about 900 KB
	for range 50 {
		stalledReader(t, p, "/v1/batches/big/report")
	}
	// The readers' handlers are blocked writing, with no connection to
	// Postgres held (the test pool has only a few).
	deadline := time.Now().Add(20 * time.Second)
	for i := range 5 {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		req := p.multipartRequest(map[string]string{"target": "sink"}, file{name: fmt.Sprintf("during-%d.txt", i), data: []byte("still here")})
		resp, err := http.DefaultClient.Do(withKey(req.WithContext(ctx), p.key))
		cancel()
		if err != nil {
			t.Fatalf("upload %d while 50 report readers are stalled: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload %d while 50 report readers are stalled: %d", i, resp.StatusCode)
		}
		var sum struct{ Name string }
		if code := p.get("/v1/batches/big", &sum); code != http.StatusOK {
			t.Fatalf("batch summary while stalled: %d", code)
		}
	}
}

// TestStalledReportReaderIsCutOff: a reader that stops is cut off after the
// write timeout: it gets part of the report and a closed connection, never
// the whole.
func TestStalledReportReaderIsCutOff(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, "targets:\n  - {name: sink, kind: http, url: \"http://127.0.0.1:1/\"}\n",
		pipelineOptions{smallSendBuffers: true, reportWrite: 300 * time.Millisecond, noWorker: true})
	p.bigBatch("big", 5000)
	c := stalledReader(t, p, "/v1/batches/big/report")
	// Stalling is the point: stop reading for well over the timeout.
	time.Sleep(1500 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading after the stall: %v", err)
	}
	full := 5000 * 100
	if len(got) == 0 || len(got) >= full {
		t.Fatalf("read %d bytes after the stall, want part of a report of over %d", len(got), full)
	}
	if bytes.HasSuffix(bytes.TrimSpace(got), []byte("\r\n0")) {
		t.Fatalf("the cut-off report ended like a whole one")
	}
}

// TestUploadLimits: too many files, fields or field bytes are refused, a
// filename is kept whole, and past MaxConcurrentUploads an upload gets
// 503 with Retry-After.
func TestUploadLimits(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: sink, kind: http, url: %q}\n", base+"/ok/s"),
		pipelineOptions{maxUploads: 1, noWorker: true})

	send := func(build func(*multipart.Writer)) (int, apiError) {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		_ = w.WriteField("target", "sink")
		build(w)
		_ = w.Close()
		req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", &body)
		req.Header.Set("Content-Type", w.FormDataContentType())
		var e apiError
		return p.do(req, &e), e
	}
	if code, e := send(func(w *multipart.Writer) {
		for i := range 101 {
			part, _ := w.CreateFormFile("file", fmt.Sprintf("f%d.txt", i))
			_, _ = part.Write([]byte("x"))
		}
	}); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "100 files") {
		t.Errorf("101 files: %d %q", code, e.Error.Message)
	}
	if code, e := send(func(w *multipart.Writer) {
		for i := range 1001 {
			_ = w.WriteField(fmt.Sprintf("param.p%d", i), "v")
		}
	}); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "1000 form fields") {
		t.Errorf("1001 fields: %d %q", code, e.Error.Message)
	}
	big := strings.Repeat("v", 60<<10)
	if code, e := send(func(w *multipart.Writer) {
		for i := range 20 {
			_ = w.WriteField(fmt.Sprintf("param.p%d", i), big)
		}
	}); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "1048576 bytes together") {
		t.Errorf("1.2 MB of fields: %d %q", code, e.Error.Message)
	}

	// The filename as the client gave it, path and all; never a path here.
	var out struct{ Jobs []jobView }
	code := p.do(p.multipartRequest(map[string]string{"target": "sink"}, file{name: `..\..\HR/2026/=contrat été.pdf`, data: []byte("x")}), &out)
	if code != http.StatusAccepted || out.Jobs[0].Filename != `..\..\HR/2026/=contrat été.pdf` {
		t.Errorf("whole filename: %d %+v", code, out.Jobs)
	}

	// One upload in flight (its body trickles); the next gets 503.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(withKey(req, p.key))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	_ = mw.WriteField("target", "sink")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="slow.txt"`)
	part, _ := mw.CreatePart(h)
	_, _ = part.Write([]byte("first bytes"))
	// Its file is being received once its upload marker is written.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads_in_progress`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the trickled upload never started")
		}
	}
	req := p.multipartRequest(map[string]string{"target": "sink"}, file{name: "second.txt", data: []byte("x")})
	resp, err := http.DefaultClient.Do(withKey(req, p.key))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second upload while one is in flight: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, _ = part.Write([]byte(" and the rest"))
	_ = mw.Close()
	_ = pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Errorf("the trickled upload: %d", code)
	}
}

// TestReportNeutralisesFormulas: a cell a spreadsheet would run starts
// with an apostrophe in the CSV report.
func TestReportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: sink, kind: http, url: %q}\n", base+"/ok/s"), pipelineOptions{noWorker: true})
	for _, name := range []string{"=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "\tx", "plain.pdf"} {
		p.uploadWith(map[string]string{"target": "sink", "batch": "csv"}, file{name: name, data: []byte("x")})
	}
	req, _ := http.NewRequest(http.MethodGet, p.api.URL+"/v1/batches/csv/report?format=csv", nil)
	resp, err := http.DefaultClient.Do(withKey(req, p.key))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 7 {
		t.Fatalf("report: %d rows, %v", len(rows), err)
	}
	for _, row := range rows[1:] {
		if row[0] != "plain.pdf" && !strings.HasPrefix(row[0], "'") {
			t.Errorf("cell %q is not neutralised", row[0])
		}
	}
}

// TestRateLimitPerKey: past its bucket a key gets 429 with Retry-After;
// another key is not slowed by it.
func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, "targets: []\n", pipelineOptions{noWorker: true, rateLimit: 0.5})
	var e apiError
	if code := p.get("/v1/jobs", &e); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, p.api.URL+"/v1/jobs", nil)
	resp, err := http.DefaultClient.Do(withKey(req, p.key))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("second request: %d, Retry-After %q; want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	other := p.newKey("other", "default", "operator")
	if code := p.as(other, http.MethodGet, "/v1/jobs", "", &e); code != http.StatusOK {
		t.Errorf("another key: %d", code)
	}
}
