package workfront

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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-relay/ferry/targets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client speaks to a fake over real HTTP.
type client struct {
	t   *testing.T
	srv *httptest.Server
}

func start(t *testing.T, opts Options) (*Server, *client) {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, &client{t: t, srv: srv}
}

// answer is a decoded API answer.
type answer struct {
	status int
	header http.Header
	Data   json.RawMessage `json:"data"`
	Error  *apiError       `json:"error"`
}

// do sends a request; path is relative to APIPath unless it starts with /.
func (c *client) do(method, path string, header http.Header, body io.Reader) answer {
	c.t.Helper()
	if !strings.HasPrefix(path, "/") {
		path = APIPath + "/" + path
	}
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a); err != nil {
			c.t.Fatalf("%s %s: answer %q: %v", method, path, raw, err)
		}
	}
	return a
}

// form sends parameters in a form body.
func (c *client) form(method, path string, header http.Header, v url.Values) answer {
	c.t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, vs := range header {
		h[k] = vs
	}
	return c.do(method, path, h, strings.NewReader(v.Encode()))
}

func (c *client) login() http.Header {
	c.t.Helper()
	a := c.form(http.MethodPost, "login", nil, url.Values{"username": {UsernameDefault}, "password": {PasswordDefault}})
	var d struct{ SessionID, UserID string }
	if a.status != http.StatusOK || json.Unmarshal(a.Data, &d) != nil || d.SessionID == "" || d.UserID != UserID {
		c.t.Fatalf("login: %d %s %+v", a.status, a.Data, a.Error)
	}
	return http.Header{"Sessionid": {d.SessionID}}
}

// upload sends data as uploadedFile and returns the handle.
func (c *client) upload(auth http.Header, name string, data []byte) string {
	c.t.Helper()
	body, length, ctype, err := targets.MultipartBody([]targets.Field{{Name: "note", Value: "x"}}, "uploadedFile", name, "text/plain", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		c.t.Fatal(err)
	}
	h := http.Header{"Content-Type": {ctype}}
	for k, v := range auth {
		h[k] = v
	}
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+APIPath+"/upload", body)
	req.ContentLength = length
	req.Header = h
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	var d struct{ Handle string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(a.Data, &d) != nil || d.Handle == "" {
		c.t.Fatalf("upload: %d %s %+v", resp.StatusCode, a.Data, a.Error)
	}
	return d.Handle
}

func updates(t *testing.T, v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantError checks a's status and error class.
func wantError(t *testing.T, what string, a answer, status int, class string) {
	t.Helper()
	if a.status != status || a.Error == nil || a.Error.Class != class || a.Error.Message == "" {
		t.Errorf("%s: %d %+v, want %d with error class %s", what, a.status, a.Error, status, class)
	}
}

func TestLogin(t *testing.T) {
	_, c := start(t, Options{})
	good := url.Values{"username": {UsernameDefault}, "password": {PasswordDefault}}
	tests := []struct {
		name   string
		send   func() answer
		status int
	}{
		{"POST form", func() answer { return c.form(http.MethodPost, "login", nil, good) }, 200},
		{"POST query", func() answer { return c.do(http.MethodPost, "login?"+good.Encode(), nil, nil) }, 200},
		{"GET query, as a browser", func() answer { return c.do(http.MethodGet, "login?"+good.Encode(), nil, nil) }, 200},
		{"wrong password", func() answer {
			return c.form(http.MethodPost, "login", nil, url.Values{"username": {UsernameDefault}, "password": {"nope"}})
		}, 401},
		{"wrong username", func() answer {
			return c.form(http.MethodPost, "login", nil, url.Values{"username": {"eve"}, "password": {PasswordDefault}})
		}, 401},
		{"no credentials", func() answer { return c.do(http.MethodPost, "login", nil, nil) }, 401},
		{"PUT", func() answer { return c.form(http.MethodPut, "login", nil, good) }, 405},
		{"DELETE by method parameter", func() answer { return c.do(http.MethodPost, "login?method=delete&"+good.Encode(), nil, nil) }, 405},
	}
	for _, tc := range tests {
		a := tc.send()
		switch tc.status {
		case 200:
			var d struct{ SessionID string }
			if a.status != 200 || json.Unmarshal(a.Data, &d) != nil || len(d.SessionID) != 32 {
				t.Errorf("%s: %d %s %+v, want a session", tc.name, a.status, a.Data, a.Error)
			}
		case 401:
			wantError(t, tc.name, a, 401, ClassAuthentication)
		default:
			wantError(t, tc.name, a, tc.status, ClassInvalidParameter)
		}
	}
}

func TestCredentialsRequired(t *testing.T) {
	s, c := start(t, Options{})
	session := c.login()
	handle := c.upload(session, "a.txt", []byte("a"))
	create := url.Values{"updates": {updates(t, map[string]any{"name": "a", "handle": handle, "docObjCode": "PROJ", "objID": DemoProjectID})}}
	requests := []struct {
		name string
		send func(h http.Header, query string) answer
	}{
		{"upload", func(h http.Header, q string) answer {
			h = h.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("Content-Type", "multipart/form-data; boundary=x")
			return c.do(http.MethodPost, "upload"+q, h, strings.NewReader("--x--\r\n"))
		}},
		{"document", func(h http.Header, q string) answer { return c.form(http.MethodPost, "document"+q, h, create) }},
		{"search", func(h http.Header, q string) answer { return c.do(http.MethodGet, "document/search"+q, h, nil) }},
		{"logout", func(h http.Header, q string) answer { return c.do(http.MethodGet, "logout"+q, h, nil) }},
	}
	for _, r := range requests {
		for _, cred := range []struct {
			name   string
			header http.Header
			query  string
		}{
			{"no credentials", nil, ""},
			{"unknown session", http.Header{"Sessionid": {"0123456789abcdef0123456789abcdef"}}, ""},
			{"unknown session in query", nil, "?sessionID=0123456789abcdef0123456789abcdef"},
			{"wrong API key", nil, "?apiKey=nope"},
			{"wrong API key header", http.Header{"Apikey": {"nope"}}, ""},
		} {
			wantError(t, r.name+" with "+cred.name, r.send(cred.header, cred.query), 401, ClassAuthentication)
		}
	}
	if n := len(s.Documents()); n != 0 {
		t.Fatalf("%d documents created without credentials", n)
	}
	// The API key works as a parameter and as a header; so does the session.
	for _, q := range []string{"?apiKey=" + APIKeyDefault, "?sessionID=" + session.Get("Sessionid")} {
		if a := c.do(http.MethodGet, "document/search"+q, nil, nil); a.status != 200 {
			t.Errorf("search%s: %d %+v", q, a.status, a.Error)
		}
	}
	if a := c.do(http.MethodGet, "document/search", http.Header{"Apikey": {APIKeyDefault}}, nil); a.status != 200 {
		t.Errorf("search with apiKey header: %d %+v", a.status, a.Error)
	}
}

func TestSessionsEnd(t *testing.T) {
	s, c := start(t, Options{})
	session := c.login()
	search := func(h http.Header) int { return c.do(http.MethodGet, "document/search", h, nil).status }
	if got := search(session); got != 200 {
		t.Fatalf("search with a session: %d", got)
	}
	s.ExpireCredentials()
	if got := search(session); got != 401 {
		t.Errorf("search with an expired session: %d, want 401", got)
	}
	if got := search(http.Header{"Apikey": {APIKeyDefault}}); got != 200 {
		t.Errorf("API keys must outlive sessions: %d", got)
	}
	session = c.login()
	if a := c.do(http.MethodPost, "logout", session, nil); a.status != 200 {
		t.Fatalf("logout: %d %+v", a.status, a.Error)
	}
	if got := search(session); got != 401 {
		t.Errorf("search after logout: %d, want 401", got)
	}
}

func TestUploadStrictness(t *testing.T) {
	s, c := start(t, Options{})
	session := c.login()
	withType := func(ctype string) http.Header {
		h := session.Clone()
		h.Set("Content-Type", ctype)
		return h
	}
	multipartOf := func(write func(w *multipart.Writer)) (io.Reader, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		write(w)
		_ = w.Close()
		return &b, w.FormDataContentType()
	}
	otherField, otherType := multipartOf(func(w *multipart.Writer) {
		f, _ := w.CreateFormFile("file", "a.txt")
		_, _ = f.Write([]byte("a"))
	})
	plainField, plainType := multipartOf(func(w *multipart.Writer) { _ = w.WriteField("uploadedFile", "not a file") })
	tests := []struct {
		name   string
		a      answer
		status int
	}{
		{"GET", c.do(http.MethodGet, "upload", session, nil), 405},
		{"GET turned POST by the method parameter", c.do(http.MethodGet, "upload?method=post", session, nil), 405},
		{"PUT", c.do(http.MethodPut, "upload", withType(otherType), otherField), 405},
		{"raw body", c.do(http.MethodPost, "upload", withType("application/octet-stream"), strings.NewReader("abc")), 400},
		{"form body", c.do(http.MethodPost, "upload", withType("application/x-www-form-urlencoded"), strings.NewReader("uploadedFile=abc")), 400},
		{"multipart without boundary", c.do(http.MethodPost, "upload", withType("multipart/form-data"), strings.NewReader("abc")), 400},
		{"file in another field", c.do(http.MethodPost, "upload", withType(otherType), otherField), 400},
		{"uploadedFile not a file", c.do(http.MethodPost, "upload", withType(plainType), plainField), 400},
		{"truncated multipart", c.do(http.MethodPost, "upload", withType("multipart/form-data; boundary=x"), strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"uploadedFile\"; filename=\"a\"\r\n\r\nab")), 400},
	}
	for _, tc := range tests {
		wantError(t, tc.name, tc.a, tc.status, ClassInvalidParameter)
	}
	if n := s.Stats().PendingHandles; n != 0 {
		t.Fatalf("%d handles given for refused uploads", n)
	}

	data := bytes.Repeat([]byte("workfront "), 100_000)
	handle := c.upload(session, "Facture été 2026.pdf", data)
	sum := sha256.Sum256(data)
	last := s.Requests()[len(s.Requests())-1]
	if last.Step != StepUpload || last.Handle != handle || last.FileName != "Facture été 2026.pdf" ||
		last.Size != int64(len(data)) || last.SHA256 != hex.EncodeToString(sum[:]) || last.Auth != "session" {
		t.Errorf("recorded upload %+v: want the file's name, size and sha256", last)
	}
}

func TestCreateStrictness(t *testing.T) {
	s, c := start(t, Options{})
	session := c.login()
	valid := func() map[string]any {
		return map[string]any{
			"name": "a.txt", "handle": c.upload(session, "a.txt", []byte("a")), "docObjCode": "PROJ", "objID": DemoProjectID,
		}
	}
	with := func(k string, v any) url.Values {
		u := valid()
		if v == nil {
			delete(u, k)
		} else {
			u[k] = v
		}
		return url.Values{"updates": {updates(t, u)}}
	}
	tests := []struct {
		name   string
		a      answer
		status int
		class  string
	}{
		{"no name", c.form(http.MethodPost, "document", session, with("name", nil)), 422, ClassInvalidParameter},
		{"no handle", c.form(http.MethodPost, "document", session, with("handle", nil)), 422, ClassInvalidParameter},
		{"unknown handle", c.form(http.MethodPost, "document", session, with("handle", "0123456789abcdef0123456789abcdef")), 422, ClassInvalidParameter},
		{"no docObjCode", c.form(http.MethodPost, "document", session, with("docObjCode", nil)), 422, ClassInvalidParameter},
		{"bad docObjCode", c.form(http.MethodPost, "document", session, with("docObjCode", "PROJECT")), 422, ClassInvalidParameter},
		{"lower-case docObjCode", c.form(http.MethodPost, "document", session, with("docObjCode", "proj")), 422, ClassInvalidParameter},
		{"no objID", c.form(http.MethodPost, "document", session, with("objID", nil)), 422, ClassInvalidParameter},
		{"unknown objID", c.form(http.MethodPost, "document", session, with("objID", "0123456789abcdef0123456789abcdef")), 404, ClassNotFound},
		{"objID of a task as a project", c.form(http.MethodPost, "document", session, with("objID", DemoTaskID)), 404, ClassNotFound},
		{"unknown field", c.form(http.MethodPost, "document", session, with("color", "red")), 422, ClassIllegalArgument},
		{"name not a string", c.form(http.MethodPost, "document", session, with("name", 12)), 422, ClassInvalidParameter},
		{"unknown version field", c.form(http.MethodPost, "document", session, with("currentVersion", map[string]string{"size": "1"})), 422, ClassIllegalArgument},
		{"updates not JSON", c.form(http.MethodPost, "document", session, url.Values{"updates": {"{name:a}"}}), 422, ClassInvalidParameter},
		{"GET", c.do(http.MethodGet, "document?"+with("name", "a").Encode(), session, nil), 405, ClassInvalidParameter},
		{"PUT", c.form(http.MethodPut, "document", session, with("name", "a")), 405, ClassInvalidParameter},
		{"other object type", c.form(http.MethodPost, "project", session, with("name", "a")), 404, ClassNotFound},
		{"other API version", c.form(http.MethodPost, "/attask/api/v14.0/document", session, with("name", "a")), 404, ClassNotFound},
	}
	for _, tc := range tests {
		wantError(t, tc.name, tc.a, tc.status, tc.class)
	}
	if n := len(s.Documents()); n != 0 {
		t.Fatalf("%d documents created by refused requests", n)
	}

	// Accepted: plain parameters in the query, updates in a form body,
	// updates in the query of a GET turned POST; "docu" for "document".
	h1, h2, h3 := c.upload(session, "1.txt", []byte("1")), c.upload(session, "2.txt", []byte("22")), c.upload(session, "3.txt", []byte("333"))
	plain := url.Values{"name": {"one"}, "handle": {h1}, "docObjCode": {"PROJ"}, "objID": {DemoProjectID}}
	second := url.Values{"updates": {updates(t, map[string]any{
		"name": "two", "handle": h2, "docObjCode": "TASK", "objID": DemoTaskID, "extRefID": "job-2",
		"currentVersion": map[string]string{"version": "v1.0", "fileName": "2.txt", "ext": "txt"},
	})}}
	third := url.Values{"method": {"POST"}, "updates": {updates(t, map[string]any{"name": "three", "handle": h3, "docObjCode": "OPTASK", "objID": DemoIssueID})}}
	for i, a := range []answer{
		c.do(http.MethodPost, "document?"+plain.Encode(), session, nil),
		c.form(http.MethodPost, "DOCU", session, second),
		c.do(http.MethodGet, "document?"+third.Encode(), session, nil),
	} {
		var d struct{ ID, ObjCode string }
		if a.status != 200 || json.Unmarshal(a.Data, &d) != nil || len(d.ID) != 32 || d.ObjCode != "DOCU" {
			t.Errorf("creation %d: %d %s %+v", i+1, a.status, a.Data, a.Error)
		}
	}
	docs := s.StoredDocuments()
	if len(docs) != 3 || docs[0].Name != "one" || docs[0].Size != 1 || docs[1].FileName != "2.txt" || docs[1].Ext != "txt" ||
		docs[1].ExtRefID != "job-2" || docs[1].Size != 2 || docs[2].DocObjCode != "OPTASK" || docs[2].Size != 3 {
		t.Fatalf("stored %+v", docs)
	}

	// A handle makes one document.
	again := c.form(http.MethodPost, "document", session, url.Values{"updates": {updates(t, map[string]any{
		"name": "again", "handle": h2, "docObjCode": "PROJ", "objID": DemoProjectID,
	})}})
	wantError(t, "handle used twice", again, 422, ClassInvalidParameter)
	if n := len(s.Documents()); n != 3 {
		t.Fatalf("%d documents after a reused handle, want 3", n)
	}
}

func TestHandlesExpire(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, c := start(t, Options{HandleTTL: time.Minute, Now: clock})
	session := c.login()
	create := func(handle string) answer {
		return c.form(http.MethodPost, "document", session, url.Values{"updates": {updates(t, map[string]any{
			"name": "a", "handle": handle, "docObjCode": "PROJ", "objID": DemoProjectID,
		})}})
	}
	old := c.upload(session, "a", []byte("a"))
	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	wantError(t, "handle past its TTL", create(old), 422, ClassInvalidParameter)

	purged := c.upload(session, "b", []byte("b"))
	s.ExpireHandles()
	wantError(t, "purged handle", create(purged), 422, ClassInvalidParameter)

	if a := create(c.upload(session, "c", []byte("c"))); a.status != 200 {
		t.Errorf("fresh handle: %d %+v", a.status, a.Error)
	}
}

func TestSearchAndGet(t *testing.T) {
	s, c := start(t, Options{})
	auth := http.Header{"Apikey": {APIKeyDefault}}
	for i, ref := range []string{"job-a", "job-b", "job-a"} {
		obj := map[bool]string{true: DemoProjectID, false: DemoTaskID}[i < 2]
		code := map[bool]string{true: "PROJ", false: "TASK"}[i < 2]
		a := c.form(http.MethodPost, "document", auth, url.Values{"updates": {updates(t, map[string]any{
			"name": "n", "handle": c.upload(auth, "n", []byte{byte(i)}), "docObjCode": code, "objID": obj, "extRefID": ref,
		})}})
		if a.status != 200 {
			t.Fatalf("create: %d %+v", a.status, a.Error)
		}
	}
	search := func(q url.Values) []map[string]string {
		a := c.do(http.MethodGet, "document/search?"+q.Encode(), auth, nil)
		var found []map[string]string
		if a.status != 200 || json.Unmarshal(a.Data, &found) != nil {
			t.Fatalf("search %v: %d %+v", q, a.status, a.Error)
		}
		return found
	}
	if got := search(url.Values{"extRefID": {"job-a"}, "fields": {"ID,name"}}); len(got) != 2 {
		t.Errorf("by extRefID: %v, want 2", got)
	}
	found := search(url.Values{"extRefID": {"job-a"}, "extRefID_Mod": {"eq"}, "objID": {DemoProjectID}, "docObjCode": {"PROJ"}})
	if len(found) != 1 || found[0]["ID"] != s.StoredDocuments()[0].ID {
		t.Errorf("by extRefID and object: %v, want the first document", found)
	}
	if got := search(url.Values{"extRefID": {"job-z"}}); len(got) != 0 {
		t.Errorf("unknown extRefID: %v", got)
	}
	wantError(t, "unknown field", c.do(http.MethodGet, "document/search?color=red", auth, nil), 422, ClassIllegalArgument)
	wantError(t, "unsupported modifier", c.do(http.MethodGet, "document/search?name=n&name_Mod=contains", auth, nil), 422, ClassInvalidParameter)
	wantError(t, "POST search", c.do(http.MethodPost, "document/search", auth, nil), 405, ClassInvalidParameter)

	if a := c.do(http.MethodGet, "docu/"+found[0]["ID"], auth, nil); a.status != 200 || !strings.Contains(string(a.Data), found[0]["ID"]) {
		t.Errorf("get: %d %s", a.status, a.Data)
	}
	wantError(t, "get unknown", c.do(http.MethodGet, "document/0123456789abcdef0123456789abcdef", auth, nil), 404, ClassNotFound)
}

func TestFaults(t *testing.T) {
	s, c := start(t, Options{})
	auth := http.Header{"Apikey": {APIKeyDefault}}
	search := func() (answer, error) {
		req, _ := http.NewRequest(http.MethodGet, c.srv.URL+APIPath+"/document/search", nil)
		req.Header = auth
		resp, err := c.srv.Client().Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode, header: resp.Header}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return a, nil
	}

	s.Fail(StepSearch, 2, http.StatusBadGateway, 1500*time.Millisecond)
	for i := range 2 {
		a, err := search()
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "status fault", a, 502, ClassInternal)
		if got := a.header.Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After %q, want 2 (seconds, rounded up)", got)
		}
		if got := s.Requests()[i].Fault; got != ModeStatus {
			t.Errorf("recorded fault %q", got)
		}
	}
	if a, _ := search(); a.status != 200 {
		t.Fatalf("after the faults: %d", a.status)
	}

	s.Inject(StepSearch, 1, Fault{Status: http.StatusTooManyRequests})
	a, _ := search()
	wantError(t, "429 fault", a, 429, ClassTooManyRequests)

	s.Error200(StepSearch, 1, "", "")
	a, _ = search()
	wantError(t, "error200 fault", a, 200, ClassInternal)

	s.Drop(StepSearch, 1)
	// A GET dropped on a reused connection is retried by net/http, so
	// the drop is seen on a fresh connection.
	c.srv.Client().CloseIdleConnections()
	if _, err := search(); err == nil {
		t.Error("dropped connection: got an answer")
	}
	if got := s.Requests()[len(s.Requests())-1]; got.Status != 0 || got.Fault != ModeDrop {
		t.Errorf("recorded %+v, want a dropped request", got)
	}

	// drop-after: the document is made, the answer lost.
	s.DropAfter(StepDocument, 1)
	body := url.Values{"updates": {updates(t, map[string]any{
		"name": "n", "handle": c.upload(auth, "n", []byte("n")), "docObjCode": "PROJ", "objID": DemoProjectID,
	})}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+APIPath+"/document", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("apiKey", APIKeyDefault)
	if resp, err := c.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Error("drop-after: got an answer")
	}
	if n := len(s.Documents()); n != 1 {
		t.Errorf("drop-after: %d documents, want 1", n)
	}

	// expire: sessions end just before the request.
	session := c.login()
	s.Inject(StepSearch, 1, Fault{Mode: ModeExpire})
	wantError(t, "expire fault", c.do(http.MethodGet, "document/search", session, nil), 401, ClassAuthentication)
	if n := s.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions after the expire fault", n)
	}
}

// blockedBody signals its first read, then waits for release.
type blockedBody struct {
	io.ReadCloser
	reading chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (b *blockedBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		b.reading <- struct{}{}
		<-b.release
	})
	return b.ReadCloser.Read(p)
}

func TestConcurrencyLimit(t *testing.T) {
	s := New(Options{MaxConcurrent: 2})
	reading, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/upload") {
			r.Body = &blockedBody{ReadCloser: r.Body, reading: reading, release: release}
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := &client{t: t, srv: srv}
	auth := http.Header{"Apikey": {APIKeyDefault}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { c.upload(auth, "a", []byte("a")) })
	}
	<-reading
	<-reading
	// Two uploads are in the fake: a third request is one too many.
	wantError(t, "third request", c.do(http.MethodGet, "document/search", auth, nil), 429, ClassTooManyRequests)
	close(release)
	wg.Wait()
	if a := c.do(http.MethodGet, "document/search", auth, nil); a.status != 200 {
		t.Errorf("after the uploads: %d", a.status)
	}
	if st := s.Stats(); st.MaxConcurrent != 2 || st.InFlight != 0 || st.PendingHandles != 2 {
		t.Errorf("stats %+v, want a peak of 2, none in flight, 2 handles", st)
	}
}

func TestLimitsAndRoutes(t *testing.T) {
	_, c := start(t, Options{})
	auth := http.Header{"Apikey": {APIKeyDefault}}
	long := "document/search?name=" + strings.Repeat("x", MaxURIBytes)
	wantError(t, "long URI", c.do(http.MethodGet, long, auth, nil), http.StatusRequestURITooLong, ClassInvalidParameter)
	wantError(t, "unknown endpoint", c.do(http.MethodGet, "nothing/here/at/all", auth, nil), 404, ClassNotFound)
	wantError(t, "outside the API", c.do(http.MethodGet, "/index.html", auth, nil), 404, ClassNotFound)
}

func TestControlAPI(t *testing.T) {
	s, c := start(t, Options{})
	ctl := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, c.srv.URL+path, nil)
		resp, err := c.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	list := func(path string) []map[string]any {
		t.Helper()
		resp, err := c.srv.Client().Get(c.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v == nil {
			t.Fatalf("%s: %v %v", path, v, err)
		}
		return v
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/_fake/fail?step=upload&count=2&status=502&retry_after=3", 204},
		{"POST", "/_fake/fail?step=document&mode=drop-after", 204},
		{"POST", "/_fake/fail?step=login&mode=error200&class=x.Y&message=m", 204},
		{"POST", "/_fake/fail?step=bogus", 400},
		{"POST", "/_fake/fail?step=upload&mode=bogus", 400},
		{"POST", "/_fake/fail?step=upload&status=200", 400},
		{"POST", "/_fake/fail?step=upload&count=-1", 400},
		{"GET", "/_fake/fail?step=upload", 405},
		{"POST", "/_fake/expire", 204},
		{"POST", "/_fake/expire?what=handles", 204},
		{"POST", "/_fake/expire?what=all", 204},
		{"POST", "/_fake/expire?what=bogus", 400},
		{"POST", "/_fake/documents", 405},
		{"GET", "/_fake/stats", 200},
		{"GET", "/_fake/nothing", 404},
	} {
		if got := ctl(tc.method, tc.path); got != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.status)
		}
	}
	if got := s.faults[StepUpload]; len(got) != 2 || got[0].Status != 502 || got[0].RetryAfter != 3*time.Second {
		t.Errorf("upload faults %+v", got)
	}
	if got := s.faults[StepLogin]; len(got) != 1 || got[0].Mode != ModeError200 || got[0].Class != "x.Y" {
		t.Errorf("login faults %+v", got)
	}

	s.faults = map[string][]Fault{}
	auth := http.Header{"Apikey": {APIKeyDefault}}
	a := c.form(http.MethodPost, "document", auth, url.Values{"updates": {updates(t, map[string]any{
		"name": "n", "handle": c.upload(auth, "n", []byte("n")), "docObjCode": "PROJ", "objID": DemoProjectID,
	})}})
	if a.status != 200 {
		t.Fatal(a.Error)
	}
	if docs := list("/_fake/documents"); len(docs) != 1 || docs[0]["size"] != 1.0 {
		t.Errorf("documents %v", docs)
	}
	if reqs := list("/_fake/requests"); len(reqs) != 2 || reqs[0]["step"] != "upload" || reqs[1]["step"] != "document" {
		t.Errorf("requests %v", reqs)
	}
	if got := ctl("POST", "/_fake/reset"); got != 204 {
		t.Fatalf("reset: %d", got)
	}
	if len(list("/_fake/documents")) != 0 || len(list("/_fake/requests")) != 0 {
		t.Error("reset kept documents or requests")
	}
}

func TestRequestsHoldNoSecrets(t *testing.T) {
	s, c := start(t, Options{})
	session := c.login()
	c.do(http.MethodGet, "login?"+url.Values{"username": {UsernameDefault}, "password": {PasswordDefault}}.Encode(), nil, nil)
	c.do(http.MethodGet, "document/search?apiKey="+APIKeyDefault, nil, nil)
	c.do(http.MethodGet, "document/search", session, nil)
	raw, err := json.Marshal(s.Requests())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{PasswordDefault, APIKeyDefault, session.Get("Sessionid")} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("requests record %q", secret)
		}
	}
	got := s.Requests()
	if !slices.Equal(got[1].QueryKeys, []string{"password", "username"}) || got[2].Auth != "apiKey" || got[3].Auth != "session" {
		t.Errorf("requests %+v", got)
	}
}
