package blueworks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	t   *testing.T
	s   *Server
	url string
	hc  *http.Client
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, url: srv.URL, hc: srv.Client()}
}

// do sends req and returns the status and the decoded JSON body (nil if
// none).
func (e *env) do(req *http.Request) (*http.Response, map[string]any) {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp, body
}

func (e *env) tokenRequest(method, ctype, body string) *http.Request {
	req, _ := http.NewRequest(method, e.url+"/oauth/token", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return req
}

func (e *env) token() string {
	e.t.Helper()
	resp, body := e.do(e.tokenRequest(http.MethodPost, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {e.s.opts.ClientID}, "client_secret": {e.s.opts.ClientSecret}}.Encode()))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("token: %d %v", resp.StatusCode, body)
	}
	return body["access_token"].(string)
}

// part is one part of a multipart body: a file when filename is set.
type part struct{ name, filename, value string }

func multipartBody(parts ...part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.filename != "" {
			fw, _ := w.CreateFormFile(p.name, p.filename)
			_, _ = io.WriteString(fw, p.value)
			continue
		}
		_ = w.WriteField(p.name, p.value)
	}
	_ = w.Close()
	return &buf, w.FormDataContentType()
}

// upload builds a valid FileUpload request (activity bp/p, a 3-byte file)
// with parts replacing the default form when given.
func (e *env) upload(tok string, parts ...part) *http.Request {
	if parts == nil {
		parts = []part{
			{name: "locationField", value: "activity"},
			{name: "ancestorIdField", value: "bp"},
			{name: "parentIdField", value: "p"},
			{name: "fileData", filename: "testFileUpload", value: "abc"},
		}
	}
	body, ctype := multipartBody(parts...)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/scr/api/FileUpload", body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-IBM-API-Version", APIVersion)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req
}

func file(name, data string) part { return part{name: "fileData", filename: name, value: data} }
func field(name, v string) part   { return part{name: name, value: v} }

func TestTokenStrict(t *testing.T) {
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const ct = "application/x-www-form-urlencoded"
	good := form("grant_type", "client_credentials", "client_id", "ferry", "client_secret", "ferry-secret")
	tests := []struct {
		name, method, ctype, body, query string
		code                             int
		oauthErr                         string
	}{
		{"GET", http.MethodGet, "", "", "", 405, "invalid_request"},
		{"JSON body", http.MethodPost, "application/json", `{"grant_type":"client_credentials"}`, "", 400, "invalid_request"},
		{"no grant_type", http.MethodPost, ct, form("client_id", "ferry", "client_secret", "ferry-secret"), "", 400, "invalid_request"},
		{"password grant", http.MethodPost, ct, form("grant_type", "password", "client_id", "ferry", "client_secret", "ferry-secret"), "", 400, "unsupported_grant_type"},
		{"wrong secret", http.MethodPost, ct, form("grant_type", "client_credentials", "client_id", "ferry", "client_secret", "nope"), "", 401, "invalid_client"},
		{"wrong client", http.MethodPost, ct, form("grant_type", "client_credentials", "client_id", "other", "client_secret", "ferry-secret"), "", 401, "invalid_client"},
		{"no secret", http.MethodPost, ct, form("grant_type", "client_credentials", "client_id", "ferry"), "", 401, "invalid_client"},
		{"credentials in query", http.MethodPost, ct, form("grant_type", "client_credentials"), "client_id=ferry&client_secret=ferry-secret", 401, "invalid_client"},
		{"valid", http.MethodPost, ct, good, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			req := e.tokenRequest(tt.method, tt.ctype, tt.body)
			req.URL.RawQuery = tt.query
			resp, body := e.do(req)
			if resp.StatusCode != tt.code || (tt.oauthErr != "" && body["error"] != tt.oauthErr) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, tt.code, tt.oauthErr)
			}
			if tt.code == 200 {
				if tok, _ := body["access_token"].(string); tok == "" || body["token_type"] != "bearer" || body["expires_in"] != float64(3600) {
					t.Errorf("token response %v", body)
				}
			}
		})
	}
}

func TestUploadStrict(t *testing.T) {
	clock := struct {
		sync.Mutex
		now time.Time
	}{now: time.Now()}
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	tests := []struct {
		name   string
		opts   Options
		build  func(e *env, tok string) *http.Request
		code   int
		errHas string // in the error message
		status string // FileUpload status when code is 200
	}{
		{name: "GET", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Method = http.MethodGet
			return r
		}, code: 405, errHas: "Select POST method"},
		{name: "PUT", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Method = http.MethodPut
			return r
		}, code: 405},
		{name: "no token", build: func(e *env, _ string) *http.Request { return e.upload("") }, code: 401, errHas: "missing bearer token"},
		{name: "unknown token", build: func(e *env, _ string) *http.Request { return e.upload("forged") }, code: 401, errHas: "invalid or has expired"},
		{name: "basic auth", build: func(e *env, _ string) *http.Request {
			r := e.upload("")
			r.SetBasicAuth("ferry", "ferry-secret")
			return r
		}, code: 401},
		{name: "expired credentials", build: func(e *env, tok string) *http.Request {
			e.s.ExpireCredentials()
			return e.upload(tok)
		}, code: 401},
		{name: "token past its TTL", opts: Options{Now: now, TokenTTL: time.Minute}, build: func(e *env, tok string) *http.Request {
			clock.Lock()
			clock.now = clock.now.Add(time.Minute)
			clock.Unlock()
			return e.upload(tok)
		}, code: 401},
		{name: "wrong API version", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Header.Set("X-IBM-API-Version", "20200101")
			return r
		}, code: 400, errHas: "X-IBM-API-Version"},
		{name: "no API version", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Header.Del("X-IBM-API-Version")
			return r
		}, code: 200, status: StatusSuccess},
		{name: "not multipart", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Header.Set("Content-Type", "application/octet-stream")
			return r
		}, code: 400, errHas: "multipart/form-data"},
		{name: "truncated multipart", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			raw, _ := io.ReadAll(r.Body)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw[:len(raw)-10])), int64(len(raw)-10)
			return r
		}, code: 400, errHas: "malformed"},
		{name: "no fileData", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "post"))
		}, code: 400, errHas: "fileData is required"},
		{name: "fileData as a plain field", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "post"), field("fileData", "abc"))
		}, code: 400, errHas: "fileData is required"},
		{name: "two files", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "post"), file("a", "a"), file("b", "b"))
		}, code: 400, errHas: "only one fileData"},
		{name: "no locationField", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("parentIdField", "p"), file("a", "a"))
		}, code: 400, errHas: "locationField is required"},
		{name: "unknown location", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "folder"), file("a", "a"))
		}, code: 400, errHas: `locationField "folder"`},
		{name: "activity without ancestor", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "activity"), field("parentIdField", "p"), file("a", "a"))
		}, code: 400, errHas: "ancestorIdField is required"},
		{name: "instance with empty ancestor", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "instance"), field("ancestorIdField", ""), field("parentIdField", "w"), file("a", "a"))
		}, code: 400, errHas: "ancestorIdField is required"},
		{name: "app without parent", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "app"), field("ancestorIdField", "pa"), file("a", "a"))
		}, code: 400, errHas: "parentIdField is required"},
		{name: "policy without parent", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "policy"), file("a", "a"))
		}, code: 400, errHas: "parentIdField is required"},
		{name: "policy without ancestor", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "policy"), field("parentIdField", "pol"), file("a", "a"))
		}, code: 200, status: StatusSuccess},
		{name: "post without ids", build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "post"), file("a", "a"))
		}, code: 200, status: StatusSuccess},
		{name: "service ID without X-On-Behalf-Of", opts: Options{ServiceID: true}, build: func(e *env, tok string) *http.Request {
			return e.upload(tok)
		}, code: 400, errHas: "X-On-Behalf-Of is required"},
		{name: "X-On-Behalf-Of an unknown user", build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Header.Set("X-On-Behalf-Of", "mallory")
			return r
		}, code: 403},
		{name: "service ID on behalf of a user", opts: Options{ServiceID: true, Users: []string{"admin", "bob"}}, build: func(e *env, tok string) *http.Request {
			r := e.upload(tok)
			r.Header.Set("X-On-Behalf-Of", "bob")
			return r
		}, code: 200, status: StatusSuccess},
		{name: "unknown parent id", opts: Options{KnownIDs: []string{"bp", "p"}}, build: func(e *env, tok string) *http.Request {
			return e.upload(tok, field("locationField", "activity"), field("ancestorIdField", "bp"), field("parentIdField", "zzz"), file("a", "a"))
		}, code: 403, errHas: `"zzz"`},
		{name: "known ids", opts: Options{KnownIDs: []string{"bp", "p"}}, build: func(e *env, tok string) *http.Request {
			return e.upload(tok)
		}, code: 200, status: StatusSuccess},
		{name: "over the size limit", opts: Options{MaxFileBytes: 2}, build: func(e *env, tok string) *http.Request {
			return e.upload(tok)
		}, code: 200, status: StatusSize},
		{name: "over the quota", opts: Options{QuotaBytes: 2}, build: func(e *env, tok string) *http.Request {
			return e.upload(tok)
		}, code: 200, status: StatusSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			resp, body := e.do(tt.build(e, e.token()))
			if resp.StatusCode != tt.code {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, body, tt.code)
			}
			msg, _ := body["message"].(string)
			if d, ok := body["error_description"].(string); ok {
				msg = d
			}
			if !strings.Contains(msg, tt.errHas) {
				t.Errorf("message %q does not contain %q", msg, tt.errHas)
			}
			switch {
			case tt.code == 405 && resp.Header.Get("Allow") != http.MethodPost:
				t.Errorf("405 without Allow: POST")
			case tt.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer"):
				t.Errorf("401 without WWW-Authenticate: Bearer")
			case tt.code == 200 && body["status"] != tt.status:
				t.Errorf("status %v, want %s", body["status"], tt.status)
			}
			wantDocs := 0
			if tt.status == StatusSuccess {
				wantDocs = 1
			}
			if n := len(e.s.Documents()); n != wantDocs {
				t.Errorf("%d documents, want %d", n, wantDocs)
			}
			reqs := e.s.Requests()
			if last := reqs[len(reqs)-1]; last.Step != StepUpload || last.Status != tt.code {
				t.Errorf("recorded %+v", last)
			}
		})
	}
}

func TestUploadResponse(t *testing.T) {
	e := newEnv(t, Options{Users: []string{"admin"}})
	data := strings.Repeat("x", 5<<20+3)
	resp, body := e.do(e.upload(e.token(),
		field("locationField", "instance"), field("ancestorIdField", "w1"), field("parentIdField", "w1"),
		file("Rapport été.PDF", data)))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, k := range []string{"size", "parentId", "uploadUserId", "fileItemId", "name", "ancestorId", "uploadDate", "status", "isPublic", "location", "uploadUserName", "version", "type", "id"} {
		if _, ok := body[k].(string); !ok {
			t.Errorf("field %s = %#v, want a string", k, body[k])
		}
	}
	want := map[string]string{
		"size": "5242883.0", "status": "SUCCESS", "name": "Rapport été.PDF", "type": "4", "location": "instance",
		"ancestorId": "w1", "parentId": "w1", "version": APIVersion, "uploadUserName": "admin", "isPublic": "false",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %s", k, body[k], v)
		}
	}
	sum := sha256.Sum256([]byte(data))
	docs := e.s.Documents()
	if len(docs) != 1 || docs[0].RemoteID != body["id"] || docs[0].SHA256 != hex.EncodeToString(sum[:]) || docs[0].Size != int64(len(data)) {
		t.Errorf("documents %+v", docs)
	}
	if e.s.UsedBytes() != int64(len(data)) {
		t.Errorf("used %d", e.s.UsedBytes())
	}
}

func TestFaults(t *testing.T) {
	t.Run("HTTP status with Retry-After", func(t *testing.T) {
		e := newEnv(t, Options{})
		e.s.Fail(StepUpload, 2, http.StatusTooManyRequests, 1500*time.Millisecond)
		tok := e.token()
		for range 2 {
			resp, _ := e.do(e.upload(tok))
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
				t.Fatalf("%d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		if resp, _ := e.do(e.upload(tok)); resp.StatusCode != 200 {
			t.Fatalf("after the faults: %d", resp.StatusCode)
		}
	})
	t.Run("FailNext token", func(t *testing.T) {
		e := newEnv(t, Options{})
		e.s.FailNext(StepToken)
		req := e.tokenRequest(http.MethodPost, "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=ferry&client_secret=ferry-secret")
		if resp, _ := e.do(req); resp.StatusCode != 503 {
			t.Fatalf("%d", resp.StatusCode)
		}
		e.token()
	})
	t.Run("drop", func(t *testing.T) {
		e := newEnv(t, Options{})
		tok := e.token()
		e.s.Drop(StepUpload, 1)
		body, ctype := multipartBody(field("locationField", "post"), file("big", strings.Repeat("y", 1<<20)))
		req, _ := http.NewRequest(http.MethodPost, e.url+"/scr/api/FileUpload", body)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := e.hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("dropped request answered %d", resp.StatusCode)
		}
		if r := e.s.Requests(); !r[len(r)-1].Dropped || len(e.s.Documents()) != 0 {
			t.Fatalf("recorded %+v", r[len(r)-1])
		}
	})
	t.Run("upload statuses", func(t *testing.T) {
		e := newEnv(t, Options{})
		tok := e.token()
		if err := e.s.FailUpload(1, "BROKEN"); err == nil {
			t.Fatal("FailUpload accepted an unknown status")
		}
		for _, st := range []string{StatusFailed, StatusFailedDeleted, StatusSize, StatusSpace} {
			if err := e.s.FailUpload(1, st); err != nil {
				t.Fatal(err)
			}
			// An invalid request keeps its own refusal; the fault waits.
			if resp, _ := e.do(e.upload("")); resp.StatusCode != 401 {
				t.Fatalf("invalid request with a fault queued: %d", resp.StatusCode)
			}
			resp, body := e.do(e.upload(tok))
			if resp.StatusCode != 200 || body["status"] != st || body["id"] != "" {
				t.Fatalf("%s: %d %v", st, resp.StatusCode, body)
			}
		}
		if n := len(e.s.Documents()); n != 0 {
			t.Fatalf("%d documents after failures", n)
		}
	})
}

func TestControlAPI(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(path string) int {
		req, _ := http.NewRequest(http.MethodPost, e.url+path, nil)
		resp, _ := e.do(req)
		return resp.StatusCode
	}
	get := func(path string, v any) int {
		resp, err := e.hc.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil && resp.StatusCode == 200 {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	tok := e.token()
	if code := post("/_fake/fail?step=FileUpload&count=1&mode=SPACE"); code != 204 {
		t.Fatalf("fail: %d", code)
	}
	if _, body := e.do(e.upload(tok)); body["status"] != StatusSpace {
		t.Fatalf("after mode=SPACE: %v", body)
	}
	if code := post("/_fake/fail?step=FileUpload&status=502&retry_after=3"); code != 204 {
		t.Fatalf("fail: %d", code)
	}
	if resp, _ := e.do(e.upload(tok)); resp.StatusCode != 502 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("after status=502: %d", resp.StatusCode)
	}
	for _, bad := range []string{"?step=attach", "?mode=BROKEN", "?count=-1", "?status=200", "?step=token&mode=FAILED"} {
		if code := post("/_fake/fail" + bad); code != 400 {
			t.Errorf("fail%s: %d, want 400", bad, code)
		}
	}
	if resp, body := e.do(e.upload(tok)); resp.StatusCode != 200 || body["status"] != StatusSuccess {
		t.Fatalf("upload: %d %v", resp.StatusCode, body)
	}
	var docs []Attachment
	if code := get("/_fake/documents", &docs); code != 200 || len(docs) != 1 || docs[0].Name != "testFileUpload" {
		t.Fatalf("documents: %d %+v", code, docs)
	}
	var reqs []Request
	if code := get("/_fake/requests", &reqs); code != 200 || len(reqs) != 4 {
		t.Fatalf("requests: %d %d", code, len(reqs))
	}
	raw, _ := json.Marshal(e.s.Requests())
	if strings.Contains(string(raw), tok) || strings.Contains(string(raw), ClientSecretDefault) {
		t.Fatalf("request record holds a secret: %s", raw)
	}
	if code := post("/_fake/expire"); code != 204 {
		t.Fatalf("expire: %d", code)
	}
	if resp, _ := e.do(e.upload(tok)); resp.StatusCode != 401 {
		t.Fatalf("after expire: %d", resp.StatusCode)
	}
	if code := get("/_fake/fail", new(any)); code != 405 {
		t.Errorf("GET /_fake/fail: %d", code)
	}
	if code := get("/_fake/nothing", new(any)); code != 404 {
		t.Errorf("GET /_fake/nothing: %d", code)
	}
	if code := post("/_fake/reset"); code != 204 {
		t.Fatalf("reset: %d", code)
	}
	if code := get("/_fake/documents", &docs); code != 200 || len(docs) != 0 || len(e.s.Requests()) != 0 {
		t.Fatalf("after reset: %d documents, %d requests", len(docs), len(e.s.Requests()))
	}
}

func TestUnknownPath(t *testing.T) {
	e := newEnv(t, Options{})
	resp, _ := e.do(e.upload(e.token()))
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/scr/api/FileDownload", nil)
	if resp, _ := e.do(req); resp.StatusCode != 404 {
		t.Fatalf("%d", resp.StatusCode)
	}
}
