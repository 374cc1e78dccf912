package workfront

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	wffake "github.com/ferry-relay/ferry/internal/fakes/workfront"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var projectParams = map[string]string{ParamObjID: wffake.DemoProjectID, ParamDocObjCode: "PROJ"}

// newPair starts a fake with opts and a Client on it; a Settings without
// credentials logs in with the fake's default username and password.
func newPair(t *testing.T, opts wffake.Options, s Settings) (*Client, *wffake.Server) {
	t.Helper()
	fake := wffake.New(opts)
	c, _ := newPairOn(t, fake, fake, s)
	return c, fake
}

func newPairOn(t *testing.T, fake *wffake.Server, h http.Handler, s Settings) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.BaseURL = srv.URL
	if s.APIKey == "" && s.Username == "" {
		s.Username, s.Password = wffake.UsernameDefault, wffake.PasswordDefault
	}
	c, err := NewClient(s, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func newDelivery(name string, size int, seed uint64) *targets.Delivery {
	return targetstest.NewDelivery(targetstest.File{Name: name, Data: targetstest.RandomBytes(size, seed)}, projectParams)
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"Session", Settings{}},
		{"APIKey", Settings{APIKey: wffake.APIKeyDefault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			targetstest.Run(t, targetstest.Harness{
				New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
					c, fake := newPair(t, wffake.Options{}, tc.s)
					if tc.s.APIKey != "" {
						return c, apiKeyFake{fake}, projectParams
					}
					return c, fake, projectParams
				},
			})
		})
	}
}

// apiKeyFake is the fake as a connector with an API key sees it: there is
// no login step.
type apiKeyFake struct{ *wffake.Server }

func (apiKeyFake) Steps() []string { return []string{wffake.StepUpload, wffake.StepDocument} }

// outcome of one attempt.
const (
	ok        = "ok"
	retryable = "retryable"
	permanent = "permanent"
)

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return ok
	case targets.IsPermanent(err):
		return permanent
	}
	return retryable
}

func TestFaults(t *testing.T) {
	const (
		login, upload, document, search = wffake.StepLogin, wffake.StepUpload, wffake.StepDocument, wffake.StepSearch
	)
	tests := []struct {
		name       string
		inject     func(f *wffake.Server)
		first      string        // outcome of the first attempt; a retryable one is followed by a second
		retryAfter time.Duration // of the first attempt's error
		steps      []string      // every request over the attempts, in order
	}{
		{
			name:   "upload 503 with Retry-After",
			inject: func(f *wffake.Server) { f.Fail(upload, 1, http.StatusServiceUnavailable, 7*time.Second) },
			first:  retryable, retryAfter: 7 * time.Second,
			steps: []string{login, upload, upload, document},
		},
		{
			name:   "document 429 keeps the handle",
			inject: func(f *wffake.Server) { f.Fail(document, 1, http.StatusTooManyRequests, 0) },
			first:  retryable,
			steps:  []string{login, upload, document, search, document},
		},
		{
			name:   "login 503",
			inject: func(f *wffake.Server) { f.FailNext(login) },
			first:  retryable,
			steps:  []string{login, login, upload, document},
		},
		{
			name:   "error envelope with HTTP 200 at upload",
			inject: func(f *wffake.Server) { f.Error200(upload, 1, "", "") },
			first:  retryable,
			steps:  []string{login, upload, upload, document},
		},
		{
			name:   "error envelope with HTTP 200 at document",
			inject: func(f *wffake.Server) { f.Error200(document, 1, "", "") },
			first:  retryable,
			steps:  []string{login, upload, document, search, document},
		},
		{
			name:   "connection dropped at upload",
			inject: func(f *wffake.Server) { f.Drop(upload, 1) },
			first:  retryable,
			steps:  []string{login, upload, upload, document},
		},
		{
			name:   "connection dropped at document",
			inject: func(f *wffake.Server) { f.Drop(document, 1) },
			first:  retryable,
			steps:  []string{login, upload, document, search, document},
		},
		{
			// The handle is spent on the document whose answer was lost:
			// the retry finds that document instead of making a second.
			name:   "answer lost after the document was created",
			inject: func(f *wffake.Server) { f.DropAfter(document, 1) },
			first:  retryable,
			steps:  []string{login, upload, document, search},
		},
		{
			name:   "session expires before the document",
			inject: func(f *wffake.Server) { f.Inject(document, 1, wffake.Fault{Mode: wffake.ModeExpire}) },
			first:  ok,
			steps:  []string{login, upload, document, login, document},
		},
		{
			name:   "session expires during the upload",
			inject: func(f *wffake.Server) { f.Inject(upload, 1, wffake.Fault{Mode: wffake.ModeExpire}) },
			first:  ok,
			steps:  []string{login, upload, login, upload, document},
		},
		{
			name: "authentication error with HTTP 200",
			inject: func(f *wffake.Server) {
				f.Error200(upload, 1, wffake.ClassAuthentication, "You are not currently logged in")
			},
			first: ok,
			steps: []string{login, upload, login, upload, document},
		},
		{
			// Logging in again once is all one attempt does; the next
			// attempt logs in again.
			name:   "fresh session refused too",
			inject: func(f *wffake.Server) { f.Inject(document, 2, wffake.Fault{Mode: wffake.ModeExpire}) },
			first:  retryable,
			steps:  []string{login, upload, document, login, document, login, search, document},
		},
		{
			name: "validation error at document",
			inject: func(f *wffake.Server) {
				f.Inject(document, 1, wffake.Fault{Status: http.StatusUnprocessableEntity, Class: wffake.ClassInvalidParameter})
			},
			first: permanent,
			steps: []string{login, upload, document},
		},
		{
			name: "not-found error with HTTP 500",
			inject: func(f *wffake.Server) {
				f.Inject(document, 1, wffake.Fault{Status: http.StatusInternalServerError, Class: wffake.ClassNotFound})
			},
			first: permanent,
			steps: []string{login, upload, document},
		},
		{
			name:   "validation error with HTTP 200",
			inject: func(f *wffake.Server) { f.Error200(document, 1, wffake.ClassInvalidParameter, "bad field") },
			first:  permanent,
			steps:  []string{login, upload, document},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fake := newPair(t, wffake.Options{}, Settings{})
			tc.inject(fake)
			d := newDelivery("report.pdf", 20<<10, 7)
			res, err := c.Deliver(ctx(t), d)
			if got := outcomeOf(err); got != tc.first {
				t.Fatalf("first attempt: %s (%v), want %s", got, err, tc.first)
			}
			if err != nil {
				if got := targets.Classify(err).RetryAfter; got != tc.retryAfter {
					t.Errorf("retry after %v, want %v", got, tc.retryAfter)
				}
				if n := len(fake.Documents()); tc.first == permanent && n != 0 {
					t.Fatalf("fake holds %d documents after a refusal", n)
				}
			}
			if tc.first == retryable {
				if res, err = c.Deliver(ctx(t), d); err != nil {
					t.Fatalf("second attempt: %v", err)
				}
			}
			if got := fake.StepsTaken(); !slices.Equal(got, tc.steps) {
				t.Errorf("steps %v, want %v", got, tc.steps)
			}
			docs := fake.StoredDocuments()
			if tc.first == permanent {
				return
			}
			if len(docs) != 1 || docs[0].SHA256 != d.SHA256 || docs[0].Size != d.Size {
				t.Fatalf("fake holds %+v, want one document of %d bytes with sha %s", docs, d.Size, d.SHA256)
			}
			if res.RemoteID != docs[0].ID {
				t.Errorf("remote id %q, fake says %q", res.RemoteID, docs[0].ID)
			}
		})
	}
}

func TestHandleExpiredBetweenAttempts(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	d := newDelivery("plan.pdf", 10<<10, 3)
	fake.FailNext(wffake.StepDocument)
	if _, err := c.Deliver(ctx(t), d); outcomeOf(err) != retryable {
		t.Fatalf("first attempt: %v, want a retryable error", err)
	}
	first := d.Checkpoint[CheckpointHandle]
	if first == "" {
		t.Fatal("no handle in the checkpoint after the upload")
	}
	fake.ExpireHandles()
	res, err := c.Deliver(ctx(t), d)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	want := []string{"login", "upload", "document", "search", "document", "upload", "document"}
	if got := fake.StepsTaken(); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	docs := fake.StoredDocuments()
	if len(docs) != 1 || docs[0].SHA256 != d.SHA256 || res.RemoteID != docs[0].ID {
		t.Fatalf("fake holds %+v, result %+v: want one document with the file", docs, res)
	}
	if got := d.Checkpoint[CheckpointHandle]; got == first || got != docs[0].Handle {
		t.Errorf("checkpoint handle %q: want the new upload's %q", got, docs[0].Handle)
	}
}

func TestDocumentFields(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	d := targetstest.NewDelivery(targetstest.File{Name: "Facture été <2026> & co.PDF", Data: []byte("%PDF-1.7")},
		map[string]string{ParamObjID: " " + wffake.DemoTaskID + " ", ParamDocObjCode: "task", ParamName: "Facture de juillet"})
	d.ContentType = "application/pdf"
	res, err := c.Deliver(ctx(t), d)
	if err != nil {
		t.Fatal(err)
	}
	docs := fake.StoredDocuments()
	if len(docs) != 1 {
		t.Fatalf("fake holds %d documents", len(docs))
	}
	want := wffake.StoredDocument{
		ID: res.RemoteID, Name: "Facture de juillet", DocObjCode: "TASK", ObjID: wffake.DemoTaskID,
		ExtRefID: d.JobID, Version: "v1.0", FileName: "Facture été <2026> & co.PDF", Ext: "PDF",
		ContentType: "application/pdf", Size: d.Size, SHA256: d.SHA256,
	}
	got := docs[0]
	got.Handle, got.Created = "", time.Time{}
	if len(got.Versions) != 1 || got.Versions[0].SHA256 != d.SHA256 || got.CurrentVersionID != got.Versions[0].ID {
		t.Errorf("versions %+v, current %s: want the one version the creation made", got.Versions, got.CurrentVersionID)
	}
	got.Versions, got.CurrentVersionID = nil, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("document\n got %+v\nwant %+v", got, want)
	}
	up := fake.Requests()[1]
	if up.Step != "upload" || up.FileName != d.Filename || !strings.HasPrefix(up.ContentType, "multipart/form-data") || up.ContentLength <= d.Size {
		t.Errorf("upload request %+v: want the file %q in a multipart body with a Content-Length", up, d.Filename)
	}
}

func TestSessionSharedAcrossDeliveries(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := c.Deliver(ctx(t), newDelivery(fmt.Sprintf("f%d.bin", i), 1000, uint64(i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(fake.StepsTaken(), "login"); n != 1 {
		t.Errorf("%d logins for 8 concurrent deliveries, want 1", n)
	}
	// All eight find the session expired: one login renews it for all.
	fake.ExpireCredentials()
	for i := range 3 {
		if _, err := c.Deliver(ctx(t), newDelivery(fmt.Sprintf("g%d.bin", i), 1000, uint64(20+i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(fake.StepsTaken(), "login"); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	if n := len(fake.Documents()); n != 11 {
		t.Errorf("fake holds %d documents, want 11", n)
	}
}

func count(steps []string, step string) int {
	n := 0
	for _, s := range steps {
		if s == step {
			n++
		}
	}
	return n
}

// gatedBody holds a request body's first read until the gate opens.
type gatedBody struct {
	io.ReadCloser
	gate <-chan struct{}
	once sync.Once
}

func (b *gatedBody) Read(p []byte) (int, error) {
	b.once.Do(func() { <-b.gate })
	return b.ReadCloser.Read(p)
}

func TestConcurrencyLimit(t *testing.T) {
	const limit = 3
	fake := wffake.New(wffake.Options{MaxConcurrent: limit})
	// Uploads wait inside the fake until three are there at once: the
	// fake then sees the Client's full limit, and would answer 429 to a
	// fourth request.
	var mu sync.Mutex
	waiting := 0
	full := make(chan struct{})
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/upload") {
			mu.Lock()
			if waiting++; waiting == limit {
				close(full)
			}
			mu.Unlock()
			r.Body = &gatedBody{ReadCloser: r.Body, gate: full}
		}
		fake.ServeHTTP(w, r)
	})
	c, _ := newPairOn(t, fake, gate, Settings{MaxConcurrentRequests: limit})
	if _, got := c.SharedLimit(); got != limit {
		t.Errorf("SharedLimit %d, want %d", got, limit)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			_, err := c.Deliver(ctx(t), newDelivery(fmt.Sprintf("c%d.bin", i), 32<<10, uint64(i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Never above the limit. Reaching it exactly depends on scheduling (the
	// fake counts a request a little after the gate lets it through), so
	// only "more than one at once" is asserted on the low side.
	if got := fake.MaxConcurrent(); got > limit || got < 2 {
		t.Errorf("fake saw %d concurrent requests, want 2..%d", got, limit)
	}
	if n := len(fake.Documents()); n != 12 {
		t.Errorf("fake holds %d documents, want 12", n)
	}
}

func TestCredentialsRefused(t *testing.T) {
	tests := []struct {
		name  string
		s     Settings
		steps []string
	}{
		{"wrong password", Settings{Username: wffake.UsernameDefault, Password: "not-the-password"}, []string{"login"}},
		{"wrong API key", Settings{APIKey: "not-the-key"}, []string{"upload"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fake := newPair(t, wffake.Options{}, tc.s)
			_, err := c.Deliver(ctx(t), newDelivery("x.bin", 10, 1))
			if !targets.IsCredentials(err) || targets.IsPermanent(err) {
				t.Fatalf("got %v, want refused credentials (not permanent: the target pauses)", err)
			}
			if strings.Contains(err.Error(), "not-the-") {
				t.Errorf("error %q shows the credential", err)
			}
			if got := fake.StepsTaken(); !slices.Equal(got, tc.steps) {
				t.Errorf("steps %v, want %v", got, tc.steps)
			}
		})
	}
}

func TestSecretsStayOut(t *testing.T) {
	t.Run("api key in a transport error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, err := NewClient(Settings{BaseURL: url, APIKey: "s3cr3t-key"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Deliver(ctx(t), newDelivery("x.bin", 10, 1))
		if err == nil || targets.IsPermanent(err) {
			t.Fatalf("got %v, want a retryable error", err)
		}
		if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "REDACTED") {
			t.Errorf("error %q: want the key redacted", err)
		}
		c.http.CloseIdleConnections()
	})
	t.Run("password and session", func(t *testing.T) {
		c, fake := newPair(t, wffake.Options{}, Settings{})
		d := newDelivery("x.bin", 10, 1)
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		for _, r := range fake.Requests() {
			if slices.Contains(r.QueryKeys, "password") || slices.Contains(r.QueryKeys, "sessionID") {
				t.Errorf("%s request carries %v in its URL", r.Step, r.QueryKeys)
			}
		}
		for k, v := range d.Checkpoint {
			if v == c.currentSession() || strings.Contains(v, wffake.PasswordDefault) {
				t.Errorf("checkpoint %s holds a credential", k)
			}
		}
	})
}

func TestCheckParams(t *testing.T) {
	c, err := NewClient(Settings{BaseURL: "https://acme.my.workfront.com", APIKey: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		params map[string]string
		want   []string // fragments of the error; none means valid
	}{
		{map[string]string{"objID": "abc", "docObjCode": "PROJ"}, nil},
		{map[string]string{"objID": "abc", "docObjCode": "optask", "name": "n"}, nil},
		{map[string]string{"docObjCode": "PROJ"}, []string{"missing param.objID"}},
		{map[string]string{"objID": "  ", "docObjCode": "PROJ"}, []string{"missing param.objID"}},
		{map[string]string{"objID": "abc"}, []string{"missing param.docObjCode"}},
		{map[string]string{"objID": "abc", "docObjCode": "PROJ 1"}, []string{`param.docObjCode "PROJ 1"`}},
		{nil, []string{"missing param.objID", "missing param.docObjCode"}},
	}
	for _, tc := range tests {
		err := c.CheckParams(tc.params)
		if (err == nil) != (tc.want == nil) {
			t.Errorf("%v: got %v, want error %v", tc.params, err, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", tc.params, err, w)
			}
		}
	}
	// Deliver refuses the same, permanently, before any request.
	_, err = c.Deliver(ctx(t), targetstest.NewDelivery(targetstest.File{Name: "x"}, map[string]string{"objID": "a"}))
	if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "param.docObjCode") {
		t.Errorf("Deliver without docObjCode: %v, want a permanent error naming it", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		yaml string
		want string // error fragment, "" for valid
	}{
		{"base_url: https://acme.my.workfront.com\napi_key: k", ""},
		{"base_url: https://acme.my.workfront.com/\nusername: u\npassword: p\nmax_concurrent_requests: 4", ""},
		{"api_key: k", "base_url is required"},
		{"base_url: acme.my.workfront.com\napi_key: k", "must be an http:// or https:// URL"},
		{"base_url: https://acme.my.workfront.com/attask/api/v15.0\napi_key: k", "without the /attask/api path"},
		{"base_url: https://acme.my.workfront.com\napi_key: k\nusername: u", "not both"},
		{"base_url: https://acme.my.workfront.com\nusername: u", "are required"},
		{"base_url: https://acme.my.workfront.com", "are required"},
		{"base_url: https://acme.my.workfront.com\napi_key: k\nmax_concurrent_requests: -1", "at least 1"},
		{"base_url: https://acme.my.workfront.com\napi_key: k\nbogus: 1", "bogus"},
	}
	for _, tc := range tests {
		file := "targets:\n- name: wf\n  kind: workfront\n  " + strings.ReplaceAll(tc.yaml, "\n", "\n  ") + "\n"
		cfgs, err := targets.ParseFile(strings.NewReader(file), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		d, err := New(cfgs[0])
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: got %v, want an error saying %q", tc.yaml, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		c := d.(*Client)
		if want := "https://acme.my.workfront.com/attask/api/v15.0"; c.api != want {
			t.Errorf("%q: API at %q, want %q", tc.yaml, c.api, want)
		}
		group, limit := c.SharedLimit()
		if want := map[bool]int{true: 4, false: MaxConcurrentRequestsDefault}[strings.Contains(tc.yaml, "max_concurrent")]; limit != want || group != "workfront-acme.my.workfront.com" {
			t.Errorf("%q: SharedLimit %s %d, want %d", tc.yaml, group, limit, want)
		}
	}
}

func TestAnswerClassification(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		body       string
		want       string // ok, retryable, permanent or credentials
		wantAfter  time.Duration
	}{
		{200, "", `{"data":{"handle":"h"}}`, ok, 0},
		{200, "", `{"handle":"h"}`, ok, 0},
		{200, "", `<html>maintenance</html>`, retryable, 0},
		{200, "", `{"error":{"class":"com.attask.common.InternalException","message":"boom"}}`, retryable, 0},
		{200, "", `{"error":{"class":"com.attask.common.InvalidParameterException","message":"bad"}}`, permanent, 0},
		{200, "", `{"error":{"class":"com.attask.common.AuthenticationException","message":"You are not currently logged in"}}`, "credentials", 0},
		{401, "", `{"error":{"class":"com.attask.common.AuthenticationException","message":"x"}}`, "credentials", 0},
		{401, "", ``, "credentials", 0},
		{403, "", `{"error":{"class":"com.attask.common.SecurityException","message":"no access"}}`, permanent, 0},
		{404, "", `{"error":{"class":"com.attask.common.NotFoundException","message":"x"}}`, permanent, 0},
		{422, "", `{"error":{"class":"com.attask.common.SomethingElse","message":"x"}}`, permanent, 0},
		{500, "", `{"error":{"class":"com.attask.common.InvalidParameterException","message":"x"}}`, permanent, 0},
		{500, "", `{"error":{"class":"java.lang.NullPointerException","message":"x"}}`, retryable, 0},
		{503, "12", `<html>down</html>`, retryable, 12 * time.Second},
		{429, "3", `{"error":{"class":"com.attask.common.TooManyRequestsException","message":"x"}}`, retryable, 3 * time.Second},
		{408, "", ``, retryable, 0},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.retryAfter != "" {
			resp.Header.Set("Retry-After", tc.retryAfter)
		}
		var out struct {
			Handle string `json:"handle"`
		}
		err := decode("upload", resp, []byte(tc.body), &out)
		got := outcomeOf(err)
		if errors.Is(err, errCredentials) {
			got = "credentials"
		}
		if got != tc.want {
			t.Errorf("%d %s: %s (%v), want %s", tc.status, tc.body, got, err, tc.want)
			continue
		}
		if err == nil && out.Handle != "h" {
			t.Errorf("%d %s: handle %q, want h", tc.status, tc.body, out.Handle)
		}
		if err != nil && targets.Classify(err).RetryAfter != tc.wantAfter {
			t.Errorf("%d %s: retry after %v, want %v", tc.status, tc.body, targets.Classify(err).RetryAfter, tc.wantAfter)
		}
	}
}

func TestHandleRefusedAndSearchRefused(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	d := newDelivery("plan.pdf", 1000, 5)
	fake.FailNext(wffake.StepDocument)
	if _, err := c.Deliver(ctx(t), d); outcomeOf(err) != retryable {
		t.Fatalf("first attempt: %v", err)
	}
	fake.ExpireHandles()
	fake.Inject(wffake.StepSearch, 1, wffake.Fault{Status: http.StatusUnprocessableEntity, Class: wffake.ClassIllegalArgument})
	// A search Workfront refuses is not "not found": the attempt fails,
	// retryably, and creates nothing; the next one asks again.
	if _, err := c.Deliver(ctx(t), d); outcomeOf(err) != retryable {
		t.Fatalf("a refused search must fail the attempt, retryably: %v", err)
	}
	if n := len(fake.Documents()); n != 0 {
		t.Fatalf("created %d documents without a definite answer", n)
	}
	if _, err := c.Deliver(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	// A search that fails briefly fails the attempt instead: another
	// attempt may still find the document.
	d2 := newDelivery("plan2.pdf", 1000, 6)
	fake.FailNext(wffake.StepDocument)
	if _, err := c.Deliver(ctx(t), d2); outcomeOf(err) != retryable {
		t.Fatalf("first attempt: %v", err)
	}
	fake.ExpireHandles()
	fake.FailNext(wffake.StepSearch)
	if _, err := c.Deliver(ctx(t), d2); outcomeOf(err) != retryable {
		t.Fatalf("search 503: %v, want a retryable error", err)
	}
	if _, err := c.Deliver(ctx(t), d2); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Documents()); n != 2 {
		t.Errorf("fake holds %d documents, want 2", n)
	}
}

// Deliveries queued behind a refused login do not each send the password
// again: an account may lock after a few failures.
func TestRefusedLoginNotRepeatedByQueuedDeliveries(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	fake.RefuseCredentials(time.Minute)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, err := c.Deliver(ctx(t), newDelivery(fmt.Sprintf("f%d.pdf", i), 1000, uint64(i)))
			if !targets.IsCredentials(err) {
				t.Errorf("delivery %d: %v, want refused credentials", i, err)
			}
		})
	}
	wg.Wait()
	logins := 0
	for _, s := range fake.StepsTaken() {
		if s == wffake.StepLogin {
			logins++
		}
	}
	if logins != 1 {
		t.Errorf("%d logins sent for 10 deliveries queued behind a refused one, want 1", logins)
	}
}
