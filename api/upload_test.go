package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/jackc/pgx/v5/pgxpool"
)

// answer is what a request got back.
type answer struct {
	status int
	header http.Header
	err    apitypes.ErrorDetail
	body   []byte
}

// send makes a request with the server's key and reads its answer.
func send(t *testing.T, us uploadServer, method, path, contentType string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, us.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+us.key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apitypes.Error
	_ = json.Unmarshal(b, &e)
	return answer{status: resp.StatusCode, header: resp.Header, err: e.Error, body: b}
}

// part is one part of a multipart body: a field, or a file when filename
// is set.
type part struct {
	name, filename, contentType, data string
}

// multipartBody writes parts with boundary XB, and the closing delimiter.
func multipartBody(parts ...part) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "--XB\r\nContent-Disposition: form-data; name=%q", p.name)
		if p.filename != "" {
			fmt.Fprintf(&b, "; filename=%q", p.filename)
		}
		b.WriteString("\r\n")
		if p.contentType != "" {
			b.WriteString("Content-Type: " + p.contentType + "\r\n")
		}
		b.WriteString("\r\n" + p.data + "\r\n")
	}
	b.WriteString("--XB--\r\n")
	return b.String()
}

const multipartXB = "multipart/form-data; boundary=XB"

// Text ferry would store must be UTF-8 without NUL, and a batch label
// follows the rule of batch names (apitypes.CheckBatchName) wherever it is
// given: each break of the rule is 400 naming the field, and stores
// nothing. (Postgres refused such text: the old answer was 500; labels
// with a slash or a control character were accepted.)
func TestTextRule(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 1<<20)
	file := part{name: "file", filename: "a.txt", data: "hello"}
	for _, tc := range []struct {
		name, method, path, contentType, body string
		header                                []string
		field                                 string // the message names it
	}{
		{"upload batch field with NUL", "POST", "/v1/uploads", multipartXB,
			multipartBody(part{name: "target", data: "t"}, part{name: "batch", data: "a\x00b"}, file), nil, "batch"},
		{"upload batch field with a slash", "POST", "/v1/uploads", multipartXB,
			multipartBody(part{name: "target", data: "t"}, part{name: "batch", data: "a/b"}, file), nil, "slash"},
		{"upload batch field with ESC", "POST", "/v1/uploads", multipartXB,
			multipartBody(part{name: "target", data: "t"}, part{name: "batch", data: "a\x1bb"}, file), nil, "batch name"},
		{"upload batch field not UTF-8", "POST", "/v1/uploads", multipartXB,
			multipartBody(part{name: "target", data: "t"}, part{name: "batch", data: "a\xffb"}, file), nil, "batch name"},
		{"raw upload batch not UTF-8", "POST", "/v1/uploads?target=t&filename=a.txt&batch=a%FFb", "application/octet-stream",
			"hello", nil, `"batch"`},
		{"raw upload batch with a slash", "POST", "/v1/uploads?target=t&filename=a.txt&batch=a%2Fb", "application/octet-stream",
			"hello", nil, "slash"},
		{"file part type not UTF-8", "POST", "/v1/uploads", multipartXB,
			multipartBody(part{name: "target", data: "t"}, part{name: "file", filename: "a.txt", contentType: "text/plain; charset=\"\xff\"", data: "x"}),
			nil, "Content-Type"},
		{"Idempotency-Key not UTF-8", "POST", "/v1/uploads?target=t&filename=a.txt", "application/octet-stream",
			"hello", []string{"Idempotency-Key", "k\xff"}, "Idempotency-Key"},
		{"list filter batch with NUL", "GET", "/v1/jobs?batch=a%00b", "", "", nil, `"batch"`},
		{"list filter filename not UTF-8", "GET", "/v1/jobs?filename=%FF", "", "", nil, `"filename"`},
		{"tenant with NUL", "GET", "/v1/jobs?tenant=a%00b", "", "", nil, `"tenant"`},
		{"batches tenant with NUL", "GET", "/v1/batches?tenant=a%00b", "", "", nil, `"tenant"`},
		{"batch name in the path with NUL", "GET", "/v1/batches/a%00b", "", "", nil, "name in the path"},
		{"report of a batch name with NUL", "GET", "/v1/batches/a%00b/report", "", "", nil, "name in the path"},
		{"check with a batch holding NUL", "POST", "/v1/targets/t/check", "application/json",
			`{"batch":"a\u0000b"}`, nil, "batch"},
		{"bulk retry error with NUL", "POST", "/v1/jobs/retry", "application/json",
			`{"error":"a\u0000b"}`, nil, "error"},
		{"batch params with NUL", "POST", "/v1/batches", "application/json",
			`{"name":"b","target":"t","params":{"k":"a\u0000"}}`, nil, `params."k"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobsBefore, objectsBefore := count(t, us.pool, us.objects)
			a := send(t, us, tc.method, tc.path, tc.contentType, strings.NewReader(tc.body), tc.header...)
			if a.status != http.StatusBadRequest || !strings.Contains(a.err.Message, tc.field) {
				t.Fatalf("%d %s, want 400 naming %s", a.status, a.body, tc.field)
			}
			if j, o := count(t, us.pool, us.objects); j != jobsBefore || o != objectsBefore {
				t.Errorf("refused, but jobs went %d→%d and objects %d→%d", jobsBefore, j, objectsBefore, o)
			}
		})
	}
}

// rawRequest sends a request as written, on a connection of its own, then
// closes its side: a request a Go client would not send (a body shorter
// than its Content-Length). It returns the status line's code.
func rawRequest(t *testing.T, us uploadServer, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(us.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A multipart body is read to its end before the answer, and is complete
// only if it ends with its closing delimiter as a line of its own and as
// long as it said: "--XB--" inside a file's bytes followed by a cut right
// after a delimiter line (the next part lost) used to be accepted (202,
// the later files silently dropped), and so was a body shorter than its
// Content-Length whose bytes held a closing delimiter. Each is now 400
// with nothing recorded and nothing left stored.
func TestMultipartEndsEarly(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 1<<20)
	fields := "--XB\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\nt\r\n" +
		"--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n"
	complete := multipartBody(part{name: "target", data: "t"}, part{name: "file", filename: "a.txt", data: "x --XB-- y"})
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"closing delimiter in the data, cut after a delimiter line", fields + "x --XB-- y\r\n--XB\r\n", http.StatusBadRequest},
		{"closing delimiter in the data, cut in the next part's headers",
			fields + "x --XB-- y\r\n--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\n", http.StatusBadRequest},
		{"closing delimiter on a line of the data, then cut", fields + "x\n--XB--\r\n\r\n--XB\r\n", http.StatusBadRequest},
		{"complete, with the delimiter in the data", complete, http.StatusAccepted},
		{"complete, with an epilogue", complete + "\r\n", http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobsBefore, objectsBefore := count(t, us.pool, us.objects)
			a := send(t, us, http.MethodPost, "/v1/uploads", multipartXB, strings.NewReader(tc.body))
			if a.status != tc.status {
				t.Fatalf("%d %s, want %d", a.status, a.body, tc.status)
			}
			j, o := count(t, us.pool, us.objects)
			if tc.status == http.StatusAccepted {
				if j != jobsBefore+1 || o != objectsBefore+1 {
					t.Errorf("accepted, but jobs went %d→%d and objects %d→%d", jobsBefore, j, objectsBefore, o)
				}
			} else if j != jobsBefore || o != objectsBefore {
				t.Errorf("refused, but jobs went %d→%d and objects %d→%d", jobsBefore, j, objectsBefore, o)
			}
		})
	}
	t.Run("shorter than its Content-Length", func(t *testing.T) {
		jobsBefore, objectsBefore := count(t, us.pool, us.objects)
		status := rawRequest(t, us, "POST /v1/uploads HTTP/1.1\r\nHost: ferry\r\nAuthorization: Bearer "+us.key+"\r\n"+
			"Content-Type: "+multipartXB+"\r\nContent-Length: "+strconv.Itoa(len(complete)+100)+"\r\n\r\n"+complete)
		if status != http.StatusBadRequest {
			t.Fatalf("%d, want 400", status)
		}
		if j, o := count(t, us.pool, us.objects); j != jobsBefore || o != objectsBefore {
			t.Errorf("refused, but jobs went %d→%d and objects %d→%d", jobsBefore, j, objectsBefore, o)
		}
	})
}

// When the job store stops answering by the end of an upload, the client
// is told to retry later (503 with Retry-After; it was 500), and the file
// stored for a job that was never recorded is removed at once, not an
// hour later by the orphan sweep: the store was never reached, so nothing
// was recorded.
func TestStoreDownAtRecord(t *testing.T) {
	t.Parallel()
	t.Run("store unreachable, raw upload", func(t *testing.T) {
		t.Parallel()
		us := newUploadServer(t, 1<<20, deadStore)
		a := send(t, us, http.MethodPost, "/v1/uploads?target=t&filename=a.txt", "application/octet-stream", strings.NewReader("hello"))
		checkUnavailable(t, us, a)
	})
	t.Run("store closed while the body flows, multipart upload", func(t *testing.T) {
		t.Parallel()
		var jobsPool *pgxpool.Pool
		us := newUploadServer(t, 1<<20, ownStore(&jobsPool))
		pr, pw := io.Pipe()
		answered := make(chan answer, 1)
		go func() { answered <- send(t, us, http.MethodPost, "/v1/uploads", multipartXB, pr) }()
		body := multipartBody(part{name: "target", data: "t"}, part{name: "file", filename: "a.txt", data: "hello"})
		head, tail, _ := strings.Cut(body, "hello")
		if _, err := io.WriteString(pw, head+"hel"); err != nil {
			t.Fatal(err)
		}
		// The file is being received once its marker is written.
		deadline := time.Now().Add(10 * time.Second)
		for markers(t, us.pool) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no upload marker within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		jobsPool.Close()
		if _, err := io.WriteString(pw, "lo"+tail); err != nil {
			t.Fatal(err)
		}
		_ = pw.Close()
		checkUnavailable(t, us, <-answered)
	})
}

// checkUnavailable checks a 503 with Retry-After that recorded nothing and
// left nothing stored.
func checkUnavailable(t *testing.T, us uploadServer, a answer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.err.Code != "unavailable" {
		t.Fatalf("%d (Retry-After %q) %s, want 503 unavailable with Retry-After", a.status, a.header.Get("Retry-After"), a.body)
	}
	if j, o := count(t, us.pool, us.objects); j != 0 || o != 0 {
		t.Errorf("%d jobs, %d objects left: want none", j, o)
	}
}

// A multipart file over its target's size limit is refused as soon as the
// limit is passed, as a raw upload with a declared size is: its body is
// read no further (it used to be stored whole, up to the server's limit,
// before the 413).
func TestMultipartOverTargetLimitStopsReading(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 8<<20, func(o *serverOptions) {
		o.targets = "targets:\n  - {name: bw, kind: blueworks, base_url: \"http://127.0.0.1:1\", client_id: c, client_secret: s,\n" +
			"     max_file_bytes: 65536, params: {locationField: post}}\n"
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	answered := make(chan answer, 1)
	go func() { answered <- send(t, us, http.MethodPost, "/v1/uploads", multipartXB, pr) }()
	head, _, _ := strings.Cut(multipartBody(part{name: "target", data: "bw"}, part{name: "file", filename: "big.bin", data: "DATA"}), "DATA")
	go func() {
		// 128 KiB of the file, then nothing: the body stays open.
		_, _ = io.WriteString(pw, head+strings.Repeat("x", 128<<10))
	}()
	select {
	case a := <-answered:
		if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.err.Message, "bw") {
			t.Fatalf("%d %s, want 413 naming target bw", a.status, a.body)
		}
	case <-time.After(15 * time.Second):
		_ = pw.Close()
		<-answered
		t.Fatal("no answer within 15s with the body still open: the file was read past the target's limit")
	}
	if j, o := count(t, us.pool, us.objects); j != 0 || o != 0 {
		t.Errorf("%d jobs, %d objects left: want none", j, o)
	}
}

// upload sends one multipart upload request with key, in batch when set,
// of files (name: content), and returns its status and the ids and
// filenames of the jobs it answered.
func upload(t *testing.T, us uploadServer, key, batch string, files ...string) (int, []string) {
	t.Helper()
	parts := []part{{name: "target", data: "t"}}
	if batch != "" {
		parts = append(parts, part{name: "batch", data: batch})
	}
	for _, f := range files {
		name, data, _ := strings.Cut(f, ":")
		parts = append(parts, part{name: "file", filename: name, data: data})
	}
	a := send(t, us, http.MethodPost, "/v1/uploads", multipartXB, strings.NewReader(multipartBody(parts...)), "Idempotency-Key", key)
	var out apitypes.UploadResult
	_ = json.Unmarshal(a.body, &out)
	var got []string
	for _, j := range out.Jobs {
		got = append(got, j.ID+" "+j.Filename)
	}
	if a.status >= 300 {
		got = []string{a.err.Code}
	}
	return a.status, got
}

// An Idempotency-Key names one request: the same request again gets the
// same answer, and anything else with that key is 409
// idempotency_key_reused, whatever the batch; a client cannot choose a
// key ferry derives for a request's later files. Each case below lost the
// client's file silently, or looped on 500, before.
func TestIdempotencyKeyNamesOneRequest(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 1<<20)
	type call struct {
		key, batch string
		files      []string
		status     int
		same       bool // the first call's answer
	}
	for _, tc := range []struct {
		name  string
		calls []call
	}{
		{"batch, then no batch", []call{
			{"CX", "cx1", []string{"c.txt:c"}, http.StatusAccepted, false},
			{"CX", "cx1", []string{"c.txt:c"}, http.StatusOK, true},
			{"CX", "", []string{"c3.txt:other"}, http.StatusConflict, false},
			{"CX", "", []string{"c.txt:c"}, http.StatusConflict, false},
		}},
		{"no batch, then a batch", []call{
			{"NX", "", []string{"n.txt:n"}, http.StatusAccepted, false},
			{"NX", "nx1", []string{"n.txt:n"}, http.StatusConflict, false},
			{"NX", "", []string{"n.txt:n"}, http.StatusOK, true},
		}},
		{"a derived key", []call{
			{"M", "", []string{"m1.txt:1", "m2.txt:2"}, http.StatusAccepted, false},
			{"M#1", "", []string{"collide.txt:x"}, http.StatusBadRequest, false},
			{"M", "", []string{"m1.txt:1", "m2.txt:2"}, http.StatusOK, true},
		}},
		{"another batch", []call{
			{"BX", "bx1", []string{"b.txt:b"}, http.StatusAccepted, false},
			{"BX", "bx2", []string{"b.txt:b"}, http.StatusConflict, false},
			{"BX", "bx3", []string{"b.txt:b"}, http.StatusConflict, false},
			{"BX", "bx1", []string{"b.txt:b"}, http.StatusOK, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first []string
			for i, c := range tc.calls {
				jobsBefore, objectsBefore := count(t, us.pool, us.objects)
				status, got := upload(t, us, c.key, c.batch, c.files...)
				if i == 0 {
					first = got
				}
				if status != c.status {
					t.Fatalf("call %d (key %s, batch %q, %v): %d %v, want %d", i+1, c.key, c.batch, c.files, status, got, c.status)
				}
				if c.same && !slices.Equal(got, first) {
					t.Errorf("call %d: answered %v, want the first answer %v", i+1, got, first)
				}
				if j, o := count(t, us.pool, us.objects); i > 0 && (j != jobsBefore || o != objectsBefore) {
					t.Errorf("call %d: jobs went %d→%d and objects %d→%d, want no change", i+1, jobsBefore, j, objectsBefore, o)
				}
			}
		})
	}
}

// A raw upload's file type is its content_type parameter's, or
// application/octet-stream: never the request's own Content-Type, which
// says how the body is sent (curl --data-binary sends
// application/x-www-form-urlencoded, and the file went on to the target
// as a form).
func TestRawUploadContentType(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 1<<20)
	for _, tc := range []struct {
		name, query, header, want string
	}{
		{"curl --data-binary", "filename=data", "application/x-www-form-urlencoded", "application/octet-stream"},
		{"no Content-Type", "filename=data", "", "application/octet-stream"},
		{"a type in the header only", "filename=data", "image/png", "application/octet-stream"},
		{"the parameter", "filename=data&content_type=application%2Fpdf", "application/x-www-form-urlencoded", "application/pdf"},
		{"the extension", "filename=a.pdf", "application/x-www-form-urlencoded", "application/pdf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, us, http.MethodPost, "/v1/uploads?target=t&"+tc.query, tc.header, strings.NewReader("a=b&c=d"))
			var out apitypes.UploadResult
			if err := json.Unmarshal(a.body, &out); err != nil || a.status != http.StatusAccepted || len(out.Jobs) != 1 {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if got := out.Jobs[0].ContentType; got != tc.want {
				t.Errorf("content type %q, want %q", got, tc.want)
			}
		})
	}
}

// A record cut midway (the connection to Postgres broke after the job's
// statement was sent) has an unknown outcome; the upload asks the store
// at once whether the job exists. Not there: the file is removed at once
// and the client told to retry (503), where it was kept for the hourly
// orphan sweep and the answer was 500. There after all: the file stays
// with its job, and the answer says the outcome is unknown (503, a retry
// with the same Idempotency-Key gets the job).
func TestRecordCutMidway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		forward bool // the statement reaches Postgres
		jobs    int
		message string
	}{
		{"statement lost", false, 0, "nothing was"},
		{"answer lost", true, 1, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var proxy *cutProxy
			us := newUploadServer(t, 1<<20, func(o *serverOptions) {
				o.jobsPool = func(tb testing.TB, dbURL string) *pgxpool.Pool {
					u, _ := url.Parse(dbURL)
					proxy = newCutProxy(tb, u.Host, []byte("cut-me.txt"), tc.forward)
					p, err := pgxpool.New(context.Background(), proxy.url(tb, dbURL))
					if err != nil {
						tb.Fatal(err)
					}
					tb.Cleanup(p.Close)
					return p
				}
			})
			a := send(t, us, http.MethodPost, "/v1/uploads?target=t&filename=cut-me.txt", "application/octet-stream", strings.NewReader("hello"))
			if !proxy.cut.Load() {
				t.Fatalf("the proxy never saw the job's statement; answer %d %s", a.status, a.body)
			}
			if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.err.Message, tc.message) {
				t.Fatalf("%d (Retry-After %q) %s, want 503 with Retry-After saying %q", a.status, a.header.Get("Retry-After"), a.body, tc.message)
			}
			if j, o := count(t, us.pool, us.objects); j != tc.jobs || o != tc.jobs {
				t.Errorf("%d jobs and %d objects, want %d of each", j, o, tc.jobs)
			}
		})
	}
}
