package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	fakefourd "github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// The edges of an upload, tried as a hostile or unlucky client would: a
// 202 is a promise that the bytes are stored whole and the job will end.

func sinkTarget(t *testing.T, extra string) string {
	_, base := newSink(t, sink.Options{})
	return fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT%s}\n", base+"/ok/raw", extra)
}

// countJobs returns how many jobs the pipeline's store holds.
func (p *pipeline) countJobs() int {
	p.t.Helper()
	var n int
	if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// countObjects returns how many objects (and unfinished multipart uploads)
// the pipeline's bucket holds.
func (p *pipeline) countObjects() int {
	p.t.Helper()
	ctx := context.Background()
	n := 0
	for obj := range p.objects.Client().ListObjects(ctx, p.objects.Bucket(), minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			p.t.Fatal(obj.Err)
		}
		n++
	}
	for up := range p.objects.Client().ListIncompleteUploads(ctx, p.objects.Bucket(), "", true) {
		if up.Err != nil {
			p.t.Fatal(up.Err)
		}
		n++
	}
	return n
}

// send posts a ready-made body and returns the status and error code.
func (p *pipeline) send(ctype string, body []byte, header http.Header) (int, string, []jobView) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for k, vs := range header {
		req.Header[k] = vs
	}
	var out struct {
		Jobs  []jobView
		Error struct{ Code, Message string }
	}
	code := p.do(req, &out)
	return code, out.Error.Code, out.Jobs
}

// multipartBody is fields then files, as bytes, and its content type.
func multipartBody(fields [][2]string, files ...file) ([]byte, string) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	for _, f := range files {
		part, _ := w.CreateFormFile("file", f.name)
		_, _ = part.Write(f.data)
	}
	_ = w.Close()
	return body.Bytes(), w.FormDataContentType()
}

// A multipart body whose framing is complete (Content-Length exact) but
// that ends without its closing boundary is refused: 400, no job, no file.
func TestTruncatedMultipartRefused(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true})
	data := bytes.Repeat([]byte("0123456789"), 5000)
	full, ctype := multipartBody([][2]string{{"target", "raw"}}, file{name: "a.bin", data: data})
	closing := strings.LastIndex(string(full), "\r\n--")
	cases := map[string][]byte{
		// the file's bytes, cut before the delimiter
		"cut in the file": full[:closing-1000],
		// the file whole, but no delimiter after it
		"no closing boundary": full[:closing],
		// a delimiter that opens a next part, then nothing
		"dangling delimiter": append(bytes.Clone(full[:closing]), []byte("\r\n--"+ctype[strings.Index(ctype, "=")+1:]+"\r\n")...),
	}
	for name, body := range cases {
		code, errCode, _ := p.send(ctype, body, nil)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", name, code, errCode)
		}
	}
	if n := p.countJobs(); n != 0 {
		t.Errorf("%d jobs recorded for truncated bodies", n)
	}
	if n := p.countObjects(); n != 0 {
		t.Errorf("%d objects stored for truncated bodies", n)
	}
}

// A file part sent before the target field is refused with a 400 that
// says what order to use, and a field after a file too.
func TestMultipartFieldOrder(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true})
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "a.txt")
	_, _ = part.Write([]byte("hello"))
	_ = w.WriteField("target", "raw")
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	var e apiError
	if code := p.do(req, &e); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "before the target") {
		t.Errorf("file before target: %d %q, want 400 naming the order", code, e.Error.Message)
	}
	body.Reset()
	w = multipart.NewWriter(&body)
	_ = w.WriteField("target", "raw")
	part, _ = w.CreateFormFile("file", "a.txt")
	_, _ = part.Write([]byte("hello"))
	_ = w.WriteField("param.title", "late")
	_ = w.Close()
	code, _, _ := p.send(w.FormDataContentType(), body.Bytes(), nil)
	if code != http.StatusBadRequest {
		t.Errorf("field after the file: %d, want 400", code)
	}
	if n := p.countJobs(); n != 0 {
		t.Errorf("%d jobs recorded", n)
	}
	if n := p.countObjects(); n != 0 {
		t.Errorf("%d objects left behind", n)
	}
}

// A repeated 3-file request with one Idempotency-Key answers the same 3
// jobs in the same order; the key with other files is a 409.
func TestRepeatedMultiFileRequest(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true})
	files := []file{{"a.txt", []byte("first")}, {"b.txt", []byte("second")}, {"c.txt", []byte("third")}}
	body, ctype := multipartBody([][2]string{{"target", "raw"}}, files...)
	key := http.Header{"Idempotency-Key": {"request-1"}}
	code, _, first := p.send(ctype, body, key)
	if code != http.StatusAccepted || len(first) != 3 {
		t.Fatalf("first request: %d, %d jobs", code, len(first))
	}
	code, _, again := p.send(ctype, body, key)
	if code != http.StatusOK || !equalIDs(ids(first), ids(again)) {
		t.Fatalf("repeat: %d %v, want 200 and %v", code, ids(again), ids(first))
	}
	other, octype := multipartBody([][2]string{{"target", "raw"}}, files[0], file{"b.txt", []byte("changed")}, files[2])
	if code, errCode, _ := p.send(octype, other, key); code != http.StatusConflict || errCode != "idempotency_key_reused" {
		t.Errorf("same key, other body: %d %s, want 409 idempotency_key_reused", code, errCode)
	}
	if n := p.countJobs(); n != 3 {
		t.Errorf("%d jobs, want 3", n)
	}
	if n := p.countObjects(); n != 3 {
		t.Errorf("%d objects, want 3", n)
	}
}

func equalIDs(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// A failure while recording a multi-file request leaves no job and no
// file: before, the jobs recorded first kept their rows and lost their
// files (or were queued with them deleted).
func TestFailedMultiFileRequestLeavesNothing(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true})
	// A fault in Postgres for the second file only.
	if _, err := p.pool.Exec(context.Background(), `
		CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.filename = 'boom.txt' THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse_boom BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_boom();`); err != nil {
		t.Fatal(err)
	}
	body, ctype := multipartBody([][2]string{{"target", "raw"}},
		file{"ok.txt", []byte("fine")}, file{"boom.txt", []byte("fails")}, file{"late.txt", []byte("never")})
	if code, _, _ := p.send(ctype, body, nil); code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", code)
	}
	if n := p.countJobs(); n != 0 {
		t.Errorf("%d jobs recorded by a failed request", n)
	}
	if n := p.countObjects(); n != 0 {
		t.Errorf("%d objects left by a failed request", n)
	}
}

// A raw upload declaring 50 MB to a target that takes 1 MB is answered
// 413 at once, before the client sends its body.
func TestDeclaredSizeOverLimitRefusedBeforeBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(fakefourd.New(fakefourd.Options{}))
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: small, kind: 4d, base_url: %q, dataclass: Invoices, attribute: pdf, max_file_bytes: 1000000, params: {key: '1'}}\n", srv.URL),
		pipelineOptions{noWorker: true})
	u, _ := url.Parse(p.api.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /v1/uploads?target=small&filename=big.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u.Host, p.key, 50<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	defer resp.Body.Close()
	var e apiError
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d (%s), want 413", resp.StatusCode, e.Error.Message)
	}
	// And over ferry's own limit with no target limit.
	p2 := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true, maxUpload: 1 << 20})
	req, _ := http.NewRequest(http.MethodPost, p2.api.URL+"/v1/uploads?target=raw&filename=big.bin", io.LimitReader(neverEnding{}, 50<<20))
	req.ContentLength = 50 << 20
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	if code := p2.do(req, &e); code != http.StatusRequestEntityTooLarge {
		t.Errorf("over FERRY_MAX_UPLOAD_BYTES: %d, want 413", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("413 took %s: the body was read first", d)
	}
	if n := p.countJobs() + p2.countJobs(); n != 0 {
		t.Errorf("%d jobs", n)
	}
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// A body that sends nothing for the idle timeout is cut: 400 or a closed
// connection, no job, its partial file removed.
func TestIdleBodyCut(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true, bodyIdle: 500 * time.Millisecond})
	u, _ := url.Parse(p.api.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /v1/uploads?target=raw&filename=slow.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u.Host, p.key, 5<<20)
	_, _ = conn.Write(bytes.Repeat([]byte("y"), 2<<20)) // then nothing
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("the upload was not cut: no answer and the connection still open after 10s")
	case err == nil:
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.countObjects() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := p.countObjects(); n != 0 {
		t.Errorf("%d objects left by a cut upload", n)
	}
	if n := p.countJobs(); n != 0 {
		t.Errorf("%d jobs", n)
	}
}
