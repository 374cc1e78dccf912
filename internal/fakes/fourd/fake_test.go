package fourd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t   *testing.T
	f   *Server
	srv *httptest.Server
	clk *testClock
}

func start(t *testing.T, opts Options) *harness {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	f := New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &harness{t: t, f: f, srv: srv, clk: clk}
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) errCode() int {
	errs, _ := a.body["__ERROR"].([]any)
	if len(errs) == 0 {
		return -1
	}
	code, _ := errs[0].(map[string]any)["errCode"].(float64)
	return int(code)
}

// do sends a request; header values "" are left out.
func (h *harness) do(method, path string, header map[string]string, body io.Reader) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func (h *harness) upload(data string, query, ctype string) string {
	h.t.Helper()
	a := h.do("POST", "/rest/$upload?"+query, map[string]string{"Content-Type": ctype, "Content-Disposition": `attachment; filename="f.bin"`}, strings.NewReader(data))
	id, _ := a.body["ID"].(string)
	if a.status != 200 || len(id) != 32 {
		h.t.Fatalf("upload: %d %v", a.status, a.body)
	}
	return id
}

func (h *harness) update(dc, body string) answer {
	h.t.Helper()
	return h.do("POST", "/rest/"+dc+"?$method=update", map[string]string{"Content-Type": "application/json"}, strings.NewReader(body))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHappyPath(t *testing.T) {
	h := start(t, Options{})
	a := h.do("GET", "/rest/Invoices(12)", nil, nil)
	if a.status != 200 || a.body["__STAMP"] != float64(1) || a.body["__KEY"] != "12" || a.body["pdf"] != nil {
		t.Fatalf("read: %d %v", a.status, a.body)
	}
	id := h.upload("hello 4D", "$binary=true&$timeout=60", "application/octet-stream")
	if n := len(h.f.Documents()); n != 0 {
		t.Fatalf("an upload never attached is not a document: %d", n)
	}
	a = h.update("Invoices", `{"__KEY":"12","__STAMP":1,"pdf":{"ID":"`+id+`"},"fileName":"f.bin"}`)
	if a.status != 200 || a.body["__STAMP"] != float64(2) {
		t.Fatalf("update: %d %v", a.status, a.body)
	}
	deferred, _ := a.body["pdf"].(map[string]any)["__deferred"].(map[string]any)
	if deferred["uri"] != "/rest/Invoices(12)/pdf?$binary=true&$expand=pdf" {
		t.Errorf("pdf shown as %v", a.body["pdf"])
	}
	docs := h.f.Documents()
	if len(docs) != 1 || docs[0].RemoteID != "Invoices(12)/pdf" || docs[0].SHA256 != sha("hello 4D") || docs[0].Size != 8 || docs[0].Name != "f.bin" {
		t.Fatalf("documents %+v", docs)
	}
	if e, _ := h.f.Entity("Invoices", "12"); e.Texts["fileName"] != "f.bin" || e.Stamp != 2 {
		t.Errorf("entity %+v", e)
	}
	// The same ID may be attached again within its timeout; the seed's
	// example sends __STAMP as a string, which 4D takes.
	a = h.update("Invoices", `{"__KEY":12,"__STAMP":"2","pdf":{"ID":"`+id+`"}}`)
	if a.status != 200 || a.body["__STAMP"] != float64(3) {
		t.Fatalf("second update: %d %v", a.status, a.body)
	}
	// Replacing the content leaves one document; null clears it.
	if a = h.update("Invoices", `{"__KEY":"12","__STAMP":3,"pdf":null}`); a.status != 200 {
		t.Fatalf("clear: %d %v", a.status, a.body)
	}
	if n := len(h.f.Documents()); n != 0 {
		t.Errorf("%d documents after clearing", n)
	}
}

func TestRawPicture(t *testing.T) {
	h := start(t, Options{})
	id := h.upload("\x89PNG....", "$rawPict=true", "image/png")
	a := h.update("Invoices", `{"__KEY":"3","__STAMP":1,"scan":{"ID":"`+id+`"}}`)
	deferred, _ := a.body["scan"].(map[string]any)["__deferred"].(map[string]any)
	if a.status != 200 || deferred["image"] != true {
		t.Fatalf("update: %d %v", a.status, a.body)
	}
}

func TestRefusals(t *testing.T) {
	h := start(t, Options{MaxRequestBytes: 100})
	id := h.upload("x", "$binary=true", "application/octet-stream")
	ref := `"pdf":{"ID":"` + id + `"}`
	tests := []struct {
		name     string
		method   string
		path     string
		ctype    string
		body     string
		chunked  bool
		want     int
		wantCode int
	}{
		{name: "unknown path", method: "GET", path: "/rest/$catalog/x/y", want: 404, wantCode: 0},
		{name: "not under rest", method: "GET", path: "/Invoices(1)", want: 404, wantCode: 0},
		{name: "upload with GET", method: "GET", path: "/rest/$upload?$binary=true", want: 405, wantCode: 0},
		{name: "login with GET", method: "GET", path: "/rest/$directory/login", want: 405, wantCode: 0},
		{name: "read with POST", method: "POST", path: "/rest/Invoices(1)", want: 405, wantCode: 0},
		{name: "update with GET", method: "GET", path: "/rest/Invoices?$method=update", want: 405, wantCode: 0},
		{name: "upload without kind", method: "POST", path: "/rest/$upload", body: "x", want: 400, wantCode: 0},
		{name: "upload with both kinds", method: "POST", path: "/rest/$upload?$binary=true&$rawPict=true", body: "x", want: 400, wantCode: 0},
		{name: "upload $binary=false", method: "POST", path: "/rest/$upload?$binary=false", body: "x", want: 400, wantCode: 0},
		{name: "bad timeout", method: "POST", path: "/rest/$upload?$binary=true&$timeout=soon", body: "x", want: 400, wantCode: 0},
		{name: "zero timeout", method: "POST", path: "/rest/$upload?$binary=true&$timeout=0", body: "x", want: 400, wantCode: 0},
		{name: "rawPict of a PDF", method: "POST", path: "/rest/$upload?$rawPict=true", ctype: "application/pdf", body: "x", want: 400, wantCode: 0},
		{name: "no Content-Length", method: "POST", path: "/rest/$upload?$binary=true", body: "x", chunked: true, want: 411, wantCode: 0},
		{name: "too large", method: "POST", path: "/rest/$upload?$binary=true", body: strings.Repeat("x", 101), want: 413, wantCode: 0},
		{name: "read unknown key", method: "GET", path: "/rest/Invoices(999)", want: 404, wantCode: 1542},
		{name: "read unknown dataclass", method: "GET", path: "/rest/Nope(1)", want: 404, wantCode: 1800},
		{name: "update without $method", method: "POST", path: "/rest/Invoices", body: `{}`, want: 400, wantCode: 0},
		{name: "update other $method", method: "POST", path: "/rest/Invoices?$method=delete", body: `{}`, want: 400, wantCode: 0},
		{name: "update unknown dataclass", method: "POST", path: "/rest/Nope?$method=update", body: `{"__KEY":"1","__STAMP":1}`, want: 404, wantCode: 1800},
		{name: "update array", method: "POST", path: "/rest/Invoices?$method=update", body: `[{"__KEY":"1","__STAMP":1}]`, want: 400, wantCode: 0},
		{name: "update not JSON", method: "POST", path: "/rest/Invoices?$method=update", body: `{__KEY: 1}`, want: 400, wantCode: 0},
		{name: "update creating", method: "POST", path: "/rest/Invoices?$method=update", body: `{"fileName":"x"}`, want: 400, wantCode: 0},
		{name: "update stamp without key", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__STAMP":1}`, want: 400, wantCode: 0},
		{name: "update unknown key", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"999","__STAMP":1,` + ref + `}`, want: 404, wantCode: 1542},
		{name: "update unknown attribute", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":1,"nope":{"ID":"` + id + `"}}`, want: 500, wantCode: 1500},
		{name: "update unknown upload", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":1,"pdf":{"ID":"D507BC03E613487E9B4C2F6A0512FE50"}}`, want: 500, wantCode: 1802},
		{name: "update file without ID", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":1,"pdf":{"id":"` + id + `"}}`, want: 400, wantCode: 0},
		{name: "update text with object", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":1,"fileName":{"ID":"x"}}`, want: 400, wantCode: 0},
		{name: "update changing ID", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":1,"ID":2}`, want: 500, wantCode: 0},
		{name: "update stale stamp", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1","__STAMP":7,` + ref + `}`, want: 500, wantCode: 1263},
		{name: "update without stamp", method: "POST", path: "/rest/Invoices?$method=update", body: `{"__KEY":"1",` + ref + `}`, want: 500, wantCode: 1263},
		{name: "control GET on fail", method: "GET", path: "/_fake/fail", want: 405},
		{name: "control POST on documents", method: "POST", path: "/_fake/documents", want: 405},
		{name: "control bad step", method: "POST", path: "/_fake/fail?step=nope", want: 400},
		{name: "control bad mode", method: "POST", path: "/_fake/fail?step=upload&mode=stale", want: 400},
		{name: "control bad status", method: "POST", path: "/_fake/fail?step=upload&status=200", want: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
			}
			ctype := tt.ctype
			if ctype == "" && tt.body != "" {
				ctype = "application/octet-stream"
			}
			a := h.do(tt.method, tt.path, map[string]string{"Content-Type": ctype}, body)
			if a.status != tt.want {
				t.Fatalf("status %d, want %d: %v", a.status, tt.want, a.body)
			}
			if !strings.HasPrefix(tt.path, "/_fake/") && a.errCode() != tt.wantCode {
				t.Errorf("errCode %d, want %d: %v", a.errCode(), tt.wantCode, a.body)
			}
		})
	}
	if n := len(h.f.Documents()); n != 0 {
		t.Errorf("refused requests made %d documents", n)
	}
	if e, _ := h.f.Entity("Invoices", "1"); e.Stamp != 1 {
		t.Errorf("refused updates changed the stamp to %d", e.Stamp)
	}
}

func TestStaleStampAnswer(t *testing.T) {
	h := start(t, Options{})
	id := h.upload("x", "$binary=true", "application/octet-stream")
	h.f.Touch("Invoices", "4")
	a := h.update("Invoices", `{"__KEY":"4","__STAMP":1,"pdf":{"ID":"`+id+`"}}`)
	st, _ := a.body["__STATUS"].(map[string]any)
	if a.status != 500 || st["status"] != float64(2) || st["success"] != false || a.body["__STAMP"] != float64(2) {
		t.Fatalf("stale: %d %v", a.status, a.body)
	}
	if errs, _ := a.body["__ERROR"].([]any); len(errs) != 3 {
		t.Errorf("want 4D's three errors, got %v", a.body["__ERROR"])
	}
}

func TestUploadExpiry(t *testing.T) {
	h := start(t, Options{UploadTimeout: 30 * time.Second})
	short := h.upload("short", "$binary=true", "application/octet-stream")
	long := h.upload("long", "$binary=true&$timeout=300", "application/octet-stream")
	h.clk.Advance(31 * time.Second)
	a := h.update("Invoices", `{"__KEY":"1","__STAMP":1,"pdf":{"ID":"`+short+`"}}`)
	if a.status != 500 || a.errCode() != 1802 {
		t.Fatalf("expired id: %d %v", a.status, a.body)
	}
	if msg := a.body["__ERROR"].([]any)[0].(map[string]any)["message"].(string); !strings.Contains(msg, short) {
		t.Errorf("message %q does not name the ID", msg)
	}
	if a = h.update("Invoices", `{"__KEY":"1","__STAMP":1,"pdf":{"ID":"`+long+`"}}`); a.status != 200 {
		t.Fatalf("id with $timeout=300 after 31 s: %d %v", a.status, a.body)
	}
	h.f.ExpireUploads()
	if a = h.update("Invoices", `{"__KEY":"1","__STAMP":2,"pdf":{"ID":"`+long+`"}}`); a.errCode() != 1802 {
		t.Fatalf("after ExpireUploads: %d %v", a.status, a.body)
	}
}

func TestSessions(t *testing.T) {
	h := start(t, Options{Username: "ferry", Password: "pw", CookieName: "WASID4D"})
	if a := h.do("GET", "/rest/Invoices(1)", nil, nil); a.status != 401 {
		t.Fatalf("without session: %d", a.status)
	}
	a := h.do("POST", "/rest/$directory/login", map[string]string{"username-4D": "ferry", "password-4D": "nope"}, nil)
	if a.status != 200 || a.body["result"] != false || a.header.Get("Set-Cookie") != "" {
		t.Fatalf("wrong password: %d %v %v", a.status, a.body, a.header)
	}
	a = h.do("POST", "/rest/$directory/login", map[string]string{"username-4D": "ferry", "password-4D": "pw"}, nil)
	cookie := strings.Split(a.header.Get("Set-Cookie"), ";")[0]
	if a.body["result"] != true || !strings.HasPrefix(cookie, "WASID4D=") {
		t.Fatalf("login: %d %v %q", a.status, a.body, cookie)
	}
	if a := h.do("GET", "/rest/Invoices(1)", map[string]string{"Cookie": cookie}, nil); a.status != 200 {
		t.Fatalf("with session: %d %v", a.status, a.body)
	}
	if a := h.do("GET", "/rest/Invoices(1)", map[string]string{"Cookie": "WASID4D=FORGED"}, nil); a.status != 401 {
		t.Fatalf("forged session: %d", a.status)
	}
	h.f.ExpireCredentials()
	if a := h.do("GET", "/rest/Invoices(1)", map[string]string{"Cookie": cookie}, nil); a.status != 401 {
		t.Fatalf("expired session: %d", a.status)
	}
	raw, _ := json.Marshal(h.f.Requests())
	if strings.Contains(string(raw), "pw") || strings.Contains(string(raw), strings.TrimPrefix(cookie, "WASID4D=")) {
		t.Errorf("recorded requests hold a secret: %s", raw)
	}
}

func TestFaults(t *testing.T) {
	h := start(t, Options{})
	h.f.Fail(StepRead, 2, 503, 3*time.Second)
	for range 2 {
		if a := h.do("GET", "/rest/Invoices(1)", nil, nil); a.status != 503 || a.header.Get("Retry-After") != "3" {
			t.Fatalf("injected: %d %v", a.status, a.header)
		}
	}
	if a := h.do("GET", "/rest/Invoices(1)", nil, nil); a.status != 200 {
		t.Fatalf("after the faults: %d", a.status)
	}
	// A coded 4D error at a chosen status.
	if err := h.f.Inject(Fault{Step: StepRead, Status: 400, ErrCode: ErrCodeNoDataclass, Message: "no such class"}); err != nil {
		t.Fatal(err)
	}
	if a := h.do("GET", "/rest/Invoices(1)", nil, nil); a.status != 400 || a.errCode() != 1800 {
		t.Fatalf("coded fault: %d %v", a.status, a.body)
	}
	if a := h.do("POST", "/_fake/fail?step=read&status=500&err_code=1542", nil, nil); a.status != 204 {
		t.Fatalf("control fail with err_code: %d %v", a.status, a.body)
	}
	if a := h.do("GET", "/rest/Invoices(1)", nil, nil); a.status != 500 || a.errCode() != 1542 {
		t.Fatalf("coded fault over the control API: %d %v", a.status, a.body)
	}

	if err := h.f.Inject(Fault{Step: StepUpload, Mode: ModeDrop}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.srv.URL+"/rest/$upload?$binary=true", strings.NewReader("x"))
	if _, err := h.srv.Client().Do(req); err == nil {
		t.Fatal("dropped upload answered")
	}
	if h.f.Uploads() != 0 {
		t.Error("dropped upload was kept")
	}

	id := h.upload("kept", "$binary=true", "application/octet-stream")
	if err := h.f.Inject(Fault{Step: StepUpdate, Mode: ModeDropAfter}); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("POST", h.srv.URL+"/rest/Invoices?$method=update", strings.NewReader(`{"__KEY":"1","__STAMP":1,"pdf":{"ID":"`+id+`"}}`))
	if _, err := h.srv.Client().Do(req); err == nil {
		t.Fatal("drop-after update answered")
	}
	if e, _ := h.f.Entity("Invoices", "1"); e.Stamp != 2 || e.Files["pdf"].SHA256 != sha("kept") {
		t.Fatalf("drop-after did not save: %+v", e)
	}

	if err := h.f.Inject(Fault{Step: StepUpdate, Mode: ModeStale}); err != nil {
		t.Fatal(err)
	}
	if a := h.update("Invoices", `{"__KEY":"1","__STAMP":2,"pdf":{"ID":"`+id+`"}}`); a.errCode() != 1263 || a.body["__STAMP"] != float64(3) {
		t.Fatalf("stale fault: %d %v", a.status, a.body)
	}
	if err := h.f.Inject(Fault{Step: StepUpdate, Mode: ModeExpireUpload}); err != nil {
		t.Fatal(err)
	}
	if a := h.update("Invoices", `{"__KEY":"1","__STAMP":3,"pdf":{"ID":"`+id+`"}}`); a.errCode() != 1802 {
		t.Fatalf("expire-upload fault: %d %v", a.status, a.body)
	}

	var faults []Mode
	for _, r := range h.f.Requests() {
		if r.Fault != "" {
			faults = append(faults, r.Fault)
		}
	}
	want := []Mode{ModeStatus, ModeStatus, ModeStatus, ModeStatus, ModeDrop, ModeDropAfter, ModeStale, ModeExpireUpload}
	if strings.Join(modes(faults), ",") != strings.Join(modes(want), ",") {
		t.Errorf("recorded faults %v, want %v", faults, want)
	}
}

func modes(ms []Mode) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

func TestLoginAnswerLost(t *testing.T) {
	h := start(t, Options{Username: "u", Password: "p"})
	if err := h.f.Inject(Fault{Step: StepLogin, Mode: ModeDropAfter}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.srv.URL+"/rest/$directory/login", nil)
	req.Header.Set("username-4D", "u")
	req.Header.Set("password-4D", "p")
	if _, err := h.srv.Client().Do(req); err == nil {
		t.Fatal("drop-after login answered")
	}
	if r := h.f.Requests(); len(r) != 1 || r[0].Fault != ModeDropAfter || r[0].Status != 0 || r[0].Username != "u" {
		t.Fatalf("requests %+v", r)
	}
}

func TestControlAPI(t *testing.T) {
	h := start(t, Options{Username: "u", Password: "p"})
	if a := h.do("POST", "/_fake/fail?step=login&count=1&status=502&retry_after=4", nil, nil); a.status != 204 {
		t.Fatalf("fail: %d %v", a.status, a.body)
	}
	a := h.do("POST", "/rest/$directory/login", map[string]string{"username-4D": "u", "password-4D": "p"}, nil)
	if a.status != 502 || a.header.Get("Retry-After") != "4" {
		t.Fatalf("injected login: %d %v", a.status, a.header)
	}
	a = h.do("POST", "/rest/$directory/login", map[string]string{"username-4D": "u", "password-4D": "p"}, nil)
	cookie := map[string]string{"Cookie": strings.Split(a.header.Get("Set-Cookie"), ";")[0]}
	id := h.do("POST", "/rest/$upload?$binary=true", map[string]string{"Cookie": cookie["Cookie"], "Content-Type": "application/octet-stream"}, strings.NewReader("ctl")).body["ID"].(string)
	if a := h.do("POST", "/_fake/touch?dataclass=Invoices&key=8", nil, nil); a.status != 204 {
		t.Fatalf("touch: %d", a.status)
	}
	a = h.do("POST", "/rest/Invoices?$method=update", cookie, strings.NewReader(`{"__KEY":"8","__STAMP":2,"pdf":{"ID":"`+id+`"}}`))
	if a.status != 200 {
		t.Fatalf("update: %d %v", a.status, a.body)
	}
	resp, err := h.srv.Client().Get(h.srv.URL + "/_fake/documents")
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&docs)
	resp.Body.Close()
	if len(docs) != 1 || docs[0]["remoteId"] != "Invoices(8)/pdf" || docs[0]["sha256"] != sha("ctl") {
		t.Fatalf("documents %v", docs)
	}
	if a := h.do("GET", "/_fake/entity?dataclass=Invoices&key=8", nil, nil); a.body["Stamp"] != float64(3) {
		t.Fatalf("entity %v", a.body)
	}
	if a := h.do("POST", "/_fake/expire", nil, nil); a.status != 204 {
		t.Fatalf("expire: %d", a.status)
	}
	if a := h.do("GET", "/rest/Invoices(8)", cookie, nil); a.status != 401 {
		t.Fatalf("after /_fake/expire: %d", a.status)
	}
	if a := h.do("POST", "/_fake/expire?what=uploads", nil, nil); a.status != 204 {
		t.Fatalf("expire uploads: %d", a.status)
	}
	resp, err = h.srv.Client().Get(h.srv.URL + "/_fake/requests")
	if err != nil {
		t.Fatal(err)
	}
	var reqs []Request
	_ = json.NewDecoder(resp.Body).Decode(&reqs)
	resp.Body.Close()
	if len(reqs) != 5 || reqs[0].Step != StepLogin || reqs[0].Status != 502 || reqs[2].BodySHA256 != sha("ctl") {
		t.Fatalf("requests %+v", reqs)
	}
	if a := h.do("POST", "/_fake/reset", nil, nil); a.status != 204 {
		t.Fatalf("reset: %d", a.status)
	}
	if e, _ := h.f.Entity("Invoices", "8"); len(h.f.Documents()) != 0 || len(h.f.Requests()) != 0 || e.Stamp != 1 {
		t.Fatal("reset left state behind")
	}
}

func TestStepsAndDefaults(t *testing.T) {
	if got := New(Options{}).Steps(); strings.Join(got, ",") != "read,upload,update" {
		t.Errorf("open steps %v", got)
	}
	f := New(Options{Username: "u"})
	if got := f.Steps(); strings.Join(got, ",") != "login,read,upload,update" {
		t.Errorf("steps %v", got)
	}
	if _, ok := f.Entity(DataclassDefault, "100"); !ok {
		t.Error("default entity 100 missing")
	}
	if _, ok := f.Entity(DataclassDefault, "101"); ok {
		t.Error("entity 101 should not exist")
	}
}
