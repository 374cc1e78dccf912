package workfronthook

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "k-test"

func newServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = key
	}
	fake := New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// call sends one request with the key in the header unless h overrides it.
func call(t *testing.T, srv *httptest.Server, method, target string, body io.Reader, h http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("apiKey", key)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, target, raw, err)
		}
	}
	return resp.StatusCode, resp.Header, v
}

// initDoc creates a placeholder and returns its id.
func initDoc(t *testing.T, srv *httptest.Server, parent, name string) string {
	t.Helper()
	q := url.Values{"parentId": {parent}, "filename": {name}}
	status, _, v := call(t, srv, http.MethodPost, "/uploadInit?"+q.Encode(), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("uploadInit: %d %v", status, v)
	}
	id, _ := v["id"].(string)
	if id == "" || v["kind"] != "file" || v["title"] != name {
		t.Fatalf("uploadInit answered %v", v)
	}
	return id
}

func put(t *testing.T, srv *httptest.Server, id string, data []byte) (int, map[string]any) {
	t.Helper()
	status, _, v := call(t, srv, http.MethodPut, "/upload?id="+url.QueryEscape(id), bytes.NewReader(data),
		http.Header{"Content-Type": {"application/octet-stream"}})
	return status, v
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      Options
		method    string
		target    string
		header    http.Header
		body      string
		want      int
		wantAllow string
	}{
		{name: "uploadInit GET", method: http.MethodGet, target: "/uploadInit?parentId=p&filename=a", want: 405, wantAllow: "POST"},
		{name: "uploadInit PUT", method: http.MethodPut, target: "/uploadInit?parentId=p&filename=a", want: 405, wantAllow: "POST"},
		{name: "upload POST", method: http.MethodPost, target: "/upload?id=x", want: 405, wantAllow: "PUT"},
		{name: "metadata POST", method: http.MethodPost, target: "/metadata?id=x", want: 405, wantAllow: "GET"},
		{name: "no key", method: http.MethodPost, target: "/uploadInit?parentId=p&filename=a", header: http.Header{"Apikey": {""}}, want: 403},
		{name: "wrong key", method: http.MethodPost, target: "/uploadInit?parentId=p&filename=a", header: http.Header{"Apikey": {"nope"}}, want: 403},
		{name: "wrong key in query", method: http.MethodPost, target: "/uploadInit?parentId=p&filename=a&apiKey=nope", header: http.Header{"Apikey": {""}}, want: 403},
		{name: "key in other header", method: http.MethodPost, target: "/uploadInit?parentId=p&filename=a", header: http.Header{"Apikey": {""}, "Authorization": {"Bearer " + key}}, want: 403},
		{name: "upload without key", method: http.MethodPut, target: "/upload?id=x", header: http.Header{"Apikey": {""}}, want: 403},
		{name: "no parentId", method: http.MethodPost, target: "/uploadInit?filename=a", want: 400},
		{name: "empty parentId", method: http.MethodPost, target: "/uploadInit?parentId=&filename=a", want: 400},
		{name: "no filename", method: http.MethodPost, target: "/uploadInit?parentId=p", want: 400},
		{name: "unknown folder", opts: Options{Folders: []string{"f1"}}, method: http.MethodPost, target: "/uploadInit?parentId=f2&filename=a", want: 404},
		{name: "upload without id", method: http.MethodPut, target: "/upload", body: "x", want: 400},
		{name: "upload unknown id", method: http.MethodPut, target: "/upload?id=nope", body: "x", want: 404},
		{name: "upload multipart", method: http.MethodPut, target: "/upload?id=nope", body: "x", header: http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, want: 415},
		{name: "metadata unknown", method: http.MethodGet, target: "/metadata?id=nope", want: 404},
		{name: "metadata without id", method: http.MethodGet, target: "/metadata", want: 400},
		{name: "other path", method: http.MethodGet, target: "/files", want: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := newServer(t, tc.opts)
			status, h, v := call(t, srv, tc.method, tc.target, strings.NewReader(tc.body), tc.header)
			if status != tc.want {
				t.Fatalf("status %d, want %d (%v)", status, tc.want, v)
			}
			if v["status"] != "error" || v["error"] == "" {
				t.Errorf("body %v, want the error envelope", v)
			}
			if got := h.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if n := len(fake.Placeholders()) + len(fake.Files()); n != 0 {
				t.Errorf("a refused request left %d documents", n)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 || reqs[0].Status != tc.want {
				t.Errorf("recorded %+v", reqs)
			}
		})
	}
}

func TestUploadLifecycle(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fake, srv := newServer(t, Options{Now: func() time.Time { return now }})
	q := url.Values{"parentId": {"folder-1"}, "filename": {"Facture été.pdf"}, "documentId": {"wf-doc"}, "documentVersionId": {"wf-ver"}}
	status, _, meta := call(t, srv, http.MethodPost, "/uploadInit?"+q.Encode(), nil, nil)
	if status != 200 {
		t.Fatalf("uploadInit %d %v", status, meta)
	}
	id := meta["id"].(string)
	if meta["mimeType"] != "application/pdf" || meta["dateModified"] != "2026-03-01T12:00:00Z" || meta["size"] != 0.0 {
		t.Errorf("metadata %v", meta)
	}
	if len(fake.Documents()) != 0 || len(fake.Placeholders()) != 1 {
		t.Fatalf("after uploadInit: %d documents, %d placeholders; want 0, 1", len(fake.Documents()), len(fake.Placeholders()))
	}
	if status, _, _ := call(t, srv, http.MethodGet, "/metadata?id="+id, nil, nil); status != 404 {
		t.Errorf("metadata of a placeholder: %d, want 404", status)
	}

	data := bytes.Repeat([]byte("ferry"), 1000)
	if status, v := put(t, srv, id, data); status != 200 || v["result"] != "success" {
		t.Fatalf("upload: %d %v", status, v)
	}
	files := fake.Files()
	if len(files) != 1 || len(fake.Placeholders()) != 0 {
		t.Fatalf("after upload: %+v, %d placeholders", files, len(fake.Placeholders()))
	}
	f := files[0]
	if f.ID != id || f.Title != "Facture été.pdf" || f.ParentID != "folder-1" || f.DocumentID != "wf-doc" ||
		f.DocumentVersionID != "wf-ver" || f.SHA256 != sha(data) || f.Size != int64(len(data)) || f.Uploads != 1 {
		t.Errorf("file %+v", f)
	}
	status, _, meta = call(t, srv, http.MethodGet, "/metadata?id="+id, nil, nil)
	if status != 200 || meta["size"] != float64(len(data)) || meta["title"] != "Facture été.pdf" {
		t.Errorf("metadata: %d %v", status, meta)
	}

	// A second upload to the same id replaces the content.
	other := []byte("replaced")
	if status, v := put(t, srv, id, other); status != 200 || v["result"] != "success" {
		t.Fatalf("re-upload: %d %v", status, v)
	}
	docs := fake.Documents()
	if len(docs) != 1 || docs[0].SHA256 != sha(other) || fake.Files()[0].Uploads != 2 {
		t.Errorf("after re-upload: %+v", fake.Files())
	}

	reqs := fake.Requests()
	if len(reqs) != 5 || reqs[2].Step != StepUpload || reqs[2].SHA256 != sha(data) || reqs[2].KeyIn != "header" ||
		reqs[2].ContentLength != int64(len(data)) || reqs[2].Result != "success" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestKeyInQueryIsNotRecorded(t *testing.T) {
	fake, srv := newServer(t, Options{APIKeyQuery: "token"})
	q := url.Values{"parentId": {"p"}, "filename": {"a"}, "token": {key}}
	status, _, _ := call(t, srv, http.MethodPost, "/uploadInit?"+q.Encode(), nil, http.Header{"Apikey": {""}})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	r := fake.Requests()[0]
	if r.KeyIn != "query" || r.Query["token"] != "" || r.Query["filename"] != "a" {
		t.Errorf("recorded %+v", r)
	}
	raw, _ := json.Marshal(fake.Requests())
	if bytes.Contains(raw, []byte(key)) {
		t.Errorf("the key is in the record: %s", raw)
	}
}

func TestUniqueNames(t *testing.T) {
	_, srv := newServer(t, Options{UniqueNames: true})
	id := initDoc(t, srv, "p", "a.txt")
	// Unfinished: the name is not taken yet.
	initDoc(t, srv, "p", "a.txt")
	put(t, srv, id, []byte("a"))
	q := url.Values{"parentId": {"p"}, "filename": {"a.txt"}}
	if status, _, _ := call(t, srv, http.MethodPost, "/uploadInit?"+q.Encode(), nil, nil); status != http.StatusConflict {
		t.Errorf("same name in same folder: %d, want 409", status)
	}
	initDoc(t, srv, "other", "a.txt")
}

func TestMaxFileBytes(t *testing.T) {
	fake, srv := newServer(t, Options{MaxFileBytes: 10})
	id := initDoc(t, srv, "p", "a")
	if status, _ := put(t, srv, id, make([]byte, 11)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("11 bytes with Content-Length: %d, want 413", status)
	}
	// Without a Content-Length the limit is found while reading.
	status, _, _ := call(t, srv, http.MethodPut, "/upload?id="+id, io.MultiReader(bytes.NewReader(make([]byte, 11))), nil)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("11 bytes chunked: %d, want 413", status)
	}
	if status, _ := put(t, srv, id, make([]byte, 10)); status != 200 {
		t.Errorf("10 bytes: %d, want 200", status)
	}
	if n := len(fake.Documents()); n != 1 {
		t.Errorf("%d documents, want 1", n)
	}
}

func TestBrokenBodyStoresNothing(t *testing.T) {
	fake, srv := newServer(t, Options{})
	id := initDoc(t, srv, "p", "a")
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /upload?id=%s HTTP/1.1\r\nHost: x\r\napiKey: %s\r\nContent-Length: 100\r\n\r\nonly ten..", id, key)
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	conn.Close()
	if v["result"] != "fail" {
		t.Errorf("answer %v, want fail", v)
	}
	if len(fake.Documents()) != 0 || len(fake.Placeholders()) != 1 {
		t.Errorf("a broken body completed the document: %+v", fake.Files())
	}
}

func TestFaults(t *testing.T) {
	t.Run("status with Retry-After, count", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		fake.Fail(StepUploadInit, 2, http.StatusTooManyRequests, 1500*time.Millisecond)
		q := "/uploadInit?parentId=p&filename=a"
		for i := range 2 {
			status, h, v := call(t, srv, http.MethodPost, q, nil, nil)
			if status != 429 || h.Get("Retry-After") != "2" || v["status"] != "error" {
				t.Errorf("request %d: %d Retry-After %q %v", i, status, h.Get("Retry-After"), v)
			}
		}
		if status, _, _ := call(t, srv, http.MethodPost, q, nil, nil); status != 200 {
			t.Errorf("third request: %d, want 200", status)
		}
		if n := len(fake.Placeholders()); n != 1 {
			t.Errorf("%d placeholders, want 1", n)
		}
	})
	t.Run("FailNext upload", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		id := initDoc(t, srv, "p", "a")
		fake.FailNext(StepUpload)
		if status, _ := put(t, srv, id, make([]byte, 300<<10)); status != 503 {
			t.Errorf("status %d, want 503", status)
		}
		if len(fake.Documents()) != 0 {
			t.Error("a failed upload completed the document")
		}
		if status, _ := put(t, srv, id, []byte("ok")); status != 200 {
			t.Errorf("retry: %d", status)
		}
	})
	t.Run("faults skip refused requests", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		fake.FailNext(StepUploadInit)
		if status, _, _ := call(t, srv, http.MethodPost, "/uploadInit?filename=a", nil, nil); status != 400 {
			t.Errorf("status %d, want 400", status)
		}
		if status, _, _ := call(t, srv, http.MethodPost, "/uploadInit?parentId=p&filename=a", nil, nil); status != 503 {
			t.Errorf("status %d, want the pending 503", status)
		}
	})
	t.Run("drop", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		if err := fake.Inject(Fault{Step: StepUploadInit, Mode: ModeDrop}); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/uploadInit?parentId=p&filename=a", nil)
		req.Header.Set("apiKey", key)
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("dropped request answered %d", resp.StatusCode)
		}
		if n := len(fake.Placeholders()); n != 0 {
			t.Errorf("drop before work created %d documents", n)
		}
		if r := fake.Requests()[0]; r.Fault != ModeDrop || r.Status != 0 {
			t.Errorf("recorded %+v", r)
		}
	})
	t.Run("drop-after upload", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		id := initDoc(t, srv, "p", "a")
		if err := fake.Inject(Fault{Step: StepUpload, Mode: ModeDropAfter}); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/upload?id="+id, strings.NewReader("bytes"))
		req.Header.Set("apiKey", key)
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("dropped request answered %d", resp.StatusCode)
		}
		if docs := fake.Documents(); len(docs) != 1 || docs[0].SHA256 != sha([]byte("bytes")) {
			t.Errorf("drop after work: documents %+v", docs)
		}
	})
	t.Run("result-fail", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		id := initDoc(t, srv, "p", "a")
		if err := fake.Inject(Fault{Step: StepUpload, Mode: ModeResultFail}); err != nil {
			t.Fatal(err)
		}
		if status, v := put(t, srv, id, []byte("x")); status != 200 || v["result"] != "fail" {
			t.Errorf("%d %v, want 200 fail", status, v)
		}
		if len(fake.Documents()) != 0 {
			t.Error("a failed upload completed the document")
		}
	})
	t.Run("forget", func(t *testing.T) {
		fake, srv := newServer(t, Options{})
		id := initDoc(t, srv, "p", "a")
		if err := fake.Inject(Fault{Step: StepUpload, Mode: ModeForget}); err != nil {
			t.Fatal(err)
		}
		if status, _ := put(t, srv, id, []byte("x")); status != 404 {
			t.Errorf("%d, want 404", status)
		}
		if status, _ := put(t, srv, id, []byte("x")); status != 404 {
			t.Errorf("the id came back: %d", status)
		}
		if n := len(fake.Placeholders()); n != 0 {
			t.Errorf("%d placeholders left", n)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		fake := New(Options{})
		for _, f := range []Fault{
			{Step: "nope"},
			{Step: StepUploadInit, Mode: ModeResultFail},
			{Step: StepUploadInit, Mode: ModeForget},
			{Step: StepUpload, Mode: "explode"},
			{Step: StepUpload, Status: 200},
			{Step: StepUpload, Count: -1},
		} {
			if err := fake.Inject(f); err == nil {
				t.Errorf("Inject(%+v) accepted", f)
			}
		}
	})
}

func TestExpireCredentialsKeepsTheKey(t *testing.T) {
	fake, srv := newServer(t, Options{})
	fake.ExpireCredentials()
	initDoc(t, srv, "p", "a")
}

func TestControlAPI(t *testing.T) {
	fake, srv := newServer(t, Options{})
	hc := srv.Client()
	do := func(method, path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, body := do(http.MethodGet, "/_fake/documents"); status != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("empty documents: %d %s", status, body)
	}
	for _, bad := range []string{
		"/_fake/fail?step=nope",
		"/_fake/fail?step=upload&count=x",
		"/_fake/fail?step=upload&retry_after=-1",
		"/_fake/fail?step=uploadInit&mode=forget",
	} {
		if status, _ := do(http.MethodPost, bad); status != 400 {
			t.Errorf("POST %s: %d, want 400", bad, status)
		}
	}
	if status, _ := do(http.MethodGet, "/_fake/fail?step=upload"); status != 405 {
		t.Errorf("GET /_fake/fail: %d, want 405", status)
	}
	if status, _ := do(http.MethodGet, "/_fake/nope"); status != 404 {
		t.Errorf("unknown control path: %d, want 404", status)
	}
	if status, _ := do(http.MethodPost, "/_fake/fail?step=upload&count=1&status=502&retry_after=3&mode=status"); status != 204 {
		t.Fatalf("fail: %d", status)
	}
	id := initDoc(t, srv, "p", "a")
	status, _, _ := call(t, srv, http.MethodPut, "/upload?id="+id, strings.NewReader("x"), nil)
	if status != 502 {
		t.Errorf("injected over the control API: %d, want 502", status)
	}
	put(t, srv, id, []byte("x"))
	if status, _ := do(http.MethodPost, "/_fake/expire"); status != 204 {
		t.Errorf("expire: %d", status)
	}

	var files []File
	_, body := do(http.MethodGet, "/_fake/documents")
	if err := json.Unmarshal(body, &files); err != nil || len(files) != 1 || files[0].ID != id || files[0].SHA256 != sha([]byte("x")) {
		t.Errorf("documents %s (%v)", body, err)
	}
	var reqs []Request
	_, body = do(http.MethodGet, "/_fake/requests")
	if err := json.Unmarshal(body, &reqs); err != nil || len(reqs) != 3 || reqs[1].Status != 502 || reqs[1].Fault != ModeStatus {
		t.Errorf("requests %s (%v)", body, err)
	}
	if status, _ := do(http.MethodPost, "/_fake/reset"); status != 204 {
		t.Errorf("reset: %d", status)
	}
	if len(fake.Files())+len(fake.Requests()) != 0 {
		t.Error("reset kept state")
	}
}
