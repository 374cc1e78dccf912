package workfronthook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	fake "github.com/ferry-relay/ferry/internal/fakes/workfronthook"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
	"github.com/ferry-relay/ferry/targets/workfronthook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "k-secret-7f3a"

var params = map[string]string{workfronthook.ParamParentID: "folder-1"}

// setup starts a fake with opts (its key set to key) and returns it with a
// client whose settings are s plus the fake's URL and the key.
func setup(t *testing.T, opts fake.Options, s workfronthook.Settings) (*workfronthook.Client, *fake.Server) {
	t.Helper()
	opts.APIKey = key
	f := fake.New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s.BaseURL = srv.URL
	if s.APIKey == "" {
		s.APIKey = key
	}
	c, err := workfronthook.NewClient(s, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSuite(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    workfronthook.Settings
	}{
		{"key in header", workfronthook.Settings{}},
		{"key in query", workfronthook.Settings{APIKeyQuery: "apiKey"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			targetstest.Run(t, targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
				c, f := setup(t, fake.Options{}, tc.s)
				return c, f, params
			}, Uncertain: map[string]bool{fake.StepUploadInit: true}})
		})
	}
}

// steps returns "step status" for each request the fake recorded.
func steps(f *fake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		s := fmt.Sprintf("%s %d", r.Step, r.Status)
		if r.Fault != "" {
			s += " " + string(r.Fault)
		}
		out = append(out, s)
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

// TestResume fails the first attempt after uploadInit in each way the
// provider can, and checks that the second attempt sends only the upload,
// to the same id, leaving exactly one document and no placeholder.
func TestResume(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     fake.Fault
		wantSteps []string
		uploads   int // successful PUTs the document saw
	}{
		{"503", fake.Fault{Step: fake.StepUpload, Status: 503}, []string{"uploadInit 200", "upload 503 status", "upload 200"}, 1},
		{"429", fake.Fault{Step: fake.StepUpload, Status: 429, RetryAfter: time.Second}, []string{"uploadInit 200", "upload 429 status", "upload 200"}, 1},
		{"result fail", fake.Fault{Step: fake.StepUpload, Mode: fake.ModeResultFail}, []string{"uploadInit 200", "upload 200 result-fail", "upload 200"}, 1},
		{"dropped", fake.Fault{Step: fake.StepUpload, Mode: fake.ModeDrop}, []string{"uploadInit 200", "upload 0 drop", "upload 200"}, 1},
		// The bytes arrived but the answer was lost: the retry replaces
		// them, still one document.
		{"answer lost", fake.Fault{Step: fake.StepUpload, Mode: fake.ModeDropAfter}, []string{"uploadInit 200", "upload 0 drop-after", "upload 200"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := setup(t, fake.Options{}, workfronthook.Settings{})
			if err := f.Inject(tc.fault); err != nil {
				t.Fatal(err)
			}
			data := targetstest.RandomBytes(200<<10, 7)
			var saved []targets.Checkpoint
			d := targets.NewDelivery(
				func(context.Context) (io.ReadCloser, error) {
					return io.NopCloser(strings.NewReader(string(data))), nil
				},
				func(_ context.Context, cp targets.Checkpoint) error {
					// Saved before the bytes are sent.
					for _, r := range f.Requests() {
						if r.Step == fake.StepUpload {
							t.Errorf("checkpoint saved after an upload was sent")
						}
					}
					saved = append(saved, cp)
					return nil
				})
			ref := targetstest.NewDelivery(targetstest.File{Name: "plan.bin", Data: data}, params)
			d.Filename, d.Size, d.SHA256, d.ContentType, d.Params = ref.Filename, ref.Size, ref.SHA256, ref.ContentType, ref.Params

			_, err := c.Deliver(ctx(t), d)
			if err == nil || targets.IsPermanent(err) {
				t.Fatalf("first attempt: %v, want a retryable error", err)
			}
			id := d.Checkpoint[workfronthook.CheckpointKey]
			if id == "" || len(saved) != 2 || saved[0][workfronthook.CheckpointInitSent] == "" {
				t.Fatalf("checkpoint %v, saves %v", d.Checkpoint, saved)
			}
			res, err := c.Deliver(ctx(t), d)
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			if got := steps(f); !equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			files := f.Files()
			if len(files) != 1 || len(f.Placeholders()) != 0 {
				t.Fatalf("%d documents and %d placeholders, want 1 and 0", len(files), len(f.Placeholders()))
			}
			if files[0].ID != id || res.RemoteID != id || files[0].SHA256 != d.SHA256 || files[0].Size != d.Size || files[0].Uploads != tc.uploads {
				t.Errorf("document %+v, result %+v, saved id %s", files[0], res, id)
			}
		})
	}
}

func TestUploadInitFailuresStartOver(t *testing.T) {
	for _, tc := range []struct {
		name             string
		fault            fake.Fault
		wantPlaceholders int
	}{
		{"500", fake.Fault{Step: fake.StepUploadInit, Status: 500}, 0},
		{"dropped", fake.Fault{Step: fake.StepUploadInit, Mode: fake.ModeDrop}, 0},
		// The provider created a document but its answer was lost: the
		// retry must create another, and the first stays empty (see the
		// package comment).
		{"answer lost", fake.Fault{Step: fake.StepUploadInit, Mode: fake.ModeDropAfter}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := setup(t, fake.Options{}, workfronthook.Settings{})
			if err := f.Inject(tc.fault); err != nil {
				t.Fatal(err)
			}
			d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, params)
			if _, err := c.Deliver(ctx(t), d); err == nil || targets.IsPermanent(err) {
				t.Fatalf("first attempt: %v, want retryable", err)
			}
			if d.Checkpoint[workfronthook.CheckpointKey] != "" {
				t.Fatalf("checkpoint %v after uploadInit failed", d.Checkpoint)
			}
			res, err := c.Deliver(ctx(t), d)
			if err != nil {
				t.Fatal(err)
			}
			// A repeat after an answer that may have been lost (a 5xx
			// may be written after the work) is marked.
			if d.Uncertain() == "" {
				t.Errorf("uncertain %q after %s", d.Uncertain(), tc.name)
			}
			docs := f.Documents()
			if len(docs) != 1 || docs[0].RemoteID != res.RemoteID || docs[0].SHA256 != d.SHA256 {
				t.Errorf("documents %+v, result %+v", docs, res)
			}
			if n := len(f.Placeholders()); n != tc.wantPlaceholders {
				t.Errorf("%d placeholders, want %d", n, tc.wantPlaceholders)
			}
		})
	}
}

func TestForgottenIDStartsOver(t *testing.T) {
	c, f := setup(t, fake.Options{}, workfronthook.Settings{})
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, params)
	f.FailNext(fake.StepUpload)
	if _, err := c.Deliver(ctx(t), d); err == nil {
		t.Fatal("first attempt succeeded")
	}
	first := d.Checkpoint[workfronthook.CheckpointKey]
	// Between attempts the provider expires the unfinished document.
	if err := f.Inject(fake.Fault{Step: fake.StepUpload, Mode: fake.ModeForget}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Deliver(ctx(t), d)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	want := []string{"uploadInit 200", "upload 503 status", "upload 404 forget", "uploadInit 200", "upload 200"}
	if got := steps(f); !equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	docs := f.Documents()
	if len(docs) != 1 || docs[0].RemoteID == first || res.RemoteID != docs[0].RemoteID || len(f.Placeholders()) != 0 {
		t.Errorf("documents %+v, placeholders %+v, result %+v, first id %s", docs, f.Placeholders(), res, first)
	}
	if got := d.Checkpoint[workfronthook.CheckpointKey]; got != res.RemoteID {
		t.Errorf("checkpoint holds %q, want the new id %q", got, res.RemoteID)
	}
}

func TestFreshIDUnknownIsRetryableWithoutLooping(t *testing.T) {
	c, f := setup(t, fake.Options{}, workfronthook.Settings{})
	if err := f.Inject(fake.Fault{Step: fake.StepUpload, Mode: fake.ModeForget}); err != nil {
		t.Fatal(err)
	}
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, params)
	_, err := c.Deliver(ctx(t), d)
	if err == nil || targets.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if len(d.Checkpoint) != 0 {
		t.Errorf("checkpoint %v, want the unknown id cleared", d.Checkpoint)
	}
	if got, want := steps(f), []string{"uploadInit 200", "upload 404 forget"}; !equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
}

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       fake.Options
		s          workfronthook.Settings
		fault      *fake.Fault
		params     map[string]string
		permanent  bool
		retryAfter time.Duration
		status     int
		wantSteps  []string
	}{
		{name: "429 at uploadInit", fault: &fake.Fault{Step: fake.StepUploadInit, Status: 429, RetryAfter: 7 * time.Second},
			retryAfter: 7 * time.Second, status: 429, wantSteps: []string{"uploadInit 429 status"}},
		{name: "502 at upload", fault: &fake.Fault{Step: fake.StepUpload, Status: 502, RetryAfter: 3 * time.Second},
			retryAfter: 3 * time.Second, status: 502, wantSteps: []string{"uploadInit 200", "upload 502 status"}},
		{name: "400 at upload", fault: &fake.Fault{Step: fake.StepUpload, Status: 400},
			permanent: true, status: 400, wantSteps: []string{"uploadInit 200", "upload 400 status"}},
		{name: "wrong key", s: workfronthook.Settings{APIKey: "wrong"},
			status: 403, wantSteps: []string{"uploadInit 403"}},
		{name: "key under another name", s: workfronthook.Settings{APIKeyHeader: "X-Api-Key"},
			status: 403, wantSteps: []string{"uploadInit 403"}},
		{name: "unknown folder", opts: fake.Options{Folders: []string{"elsewhere"}},
			permanent: true, status: 404, wantSteps: []string{"uploadInit 404"}},
		{name: "too large", opts: fake.Options{MaxFileBytes: 3},
			permanent: true, status: 413, wantSteps: []string{"uploadInit 200", "upload 413"}},
		{name: "missing parentId", params: map[string]string{"documentId": "x"}, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := setup(t, tc.opts, tc.s)
			if tc.fault != nil {
				if err := f.Inject(*tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			p := params
			if tc.params != nil {
				p = tc.params
			}
			d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, p)
			_, err := c.Deliver(ctx(t), d)
			if err == nil {
				t.Fatal("delivered")
			}
			te := targets.Classify(err)
			if te.Permanent != tc.permanent || te.RetryAfter != tc.retryAfter || te.StatusCode != tc.status {
				t.Errorf("got permanent=%v retryAfter=%v status=%d (%v), want %v %v %d",
					te.Permanent, te.RetryAfter, te.StatusCode, err, tc.permanent, tc.retryAfter, tc.status)
			}
			if got := steps(f); !equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestWhatTheProviderReceives(t *testing.T) {
	c, f := setup(t, fake.Options{}, workfronthook.Settings{
		Username:      "jane@example.com",
		RequestParams: map[string]string{"access_type": "offline"},
	})
	name := "Facture été 2026 & co+1%.pdf"
	p := map[string]string{"parentId": "dossier/à ranger", "documentId": "511ea6e0", "documentVersionId": "511ea6e1"}
	d := targetstest.NewDelivery(targetstest.File{Name: name, Data: []byte("%PDF-1.7 ...")}, p)
	d.ContentType = "application/pdf"
	res, err := c.Deliver(ctx(t), d)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests %+v", reqs)
	}
	init, up := reqs[0], reqs[1]
	wantInit := map[string]string{"parentId": "dossier/à ranger", "filename": name, "documentId": "511ea6e0", "documentVersionId": "511ea6e1", "access_type": "offline"}
	if fmt.Sprint(init.Query) != fmt.Sprint(wantInit) || init.Method != http.MethodPost || init.KeyIn != "header" || init.Username != "jane@example.com" {
		t.Errorf("uploadInit received %+v", init)
	}
	wantUp := map[string]string{"id": res.RemoteID, "access_type": "offline"}
	if fmt.Sprint(up.Query) != fmt.Sprint(wantUp) || up.Method != http.MethodPut || up.KeyIn != "header" ||
		up.ContentType != "application/pdf" || up.ContentLength != d.Size || up.SHA256 != d.SHA256 {
		t.Errorf("upload received %+v", up)
	}
	if files := f.Files(); len(files) != 1 || files[0].Title != name || files[0].ParentID != "dossier/à ranger" ||
		files[0].DocumentID != "511ea6e0" || files[0].MimeType != "application/pdf" {
		t.Errorf("files %+v", files)
	}
}

func TestBaseURLWithPath(t *testing.T) {
	f := fake.New(fake.Options{APIKey: key})
	srv := httptest.NewServer(http.StripPrefix("/api/v1", f))
	t.Cleanup(srv.Close)
	for _, base := range []string{srv.URL + "/api/v1", srv.URL + "/api/v1/"} {
		c, err := workfronthook.NewClient(workfronthook.Settings{BaseURL: base, APIKey: key}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		d := targetstest.NewDelivery(targetstest.File{Name: base, Data: []byte(base)}, params)
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatalf("base %s: %v", base, err)
		}
	}
	for _, r := range f.Requests() {
		if r.Status != 200 {
			t.Errorf("request %+v", r)
		}
	}
	if n := len(f.Documents()); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
}

func TestKeyInQueryIsRedactedFromErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // connection refused from now on
	c, err := workfronthook.NewClient(workfronthook.Settings{BaseURL: base, APIKey: key, APIKeyQuery: "apiKey"}, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("x")}, params)
	_, err = c.Deliver(ctx(t), d)
	if err == nil || targets.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable transport error", err)
	}
	if strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "apiKey=REDACTED") {
		t.Errorf("error %q", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("apiKey") != "")
	}))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c, err := workfronthook.NewClient(workfronthook.Settings{BaseURL: srv.URL, APIKey: key}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Deliver(ctx(t), targetstest.NewDelivery(targetstest.File{Name: "a", Data: []byte("x")}, params))
	if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "307") || leaked.Load() {
		t.Errorf("got %v (key sent elsewhere: %v), want a permanent error naming 307", err, leaked.Load())
	}
}

func TestAnswersOutsideTheProtocol(t *testing.T) {
	for _, tc := range []struct {
		name    string
		init    string
		upload  string
		wantErr string
	}{
		{name: "uploadInit answers HTML", init: "<html>login</html>", wantErr: "not the file's metadata"},
		{name: "uploadInit answers no id", init: `{"title":"a","kind":"file"}`, wantErr: `no "id"`},
		{name: "upload answers an unknown result", init: `{"id":"d1"}`, upload: `{"result":"maybe"}`, wantErr: `unknown result "maybe"`},
		{name: "upload answers HTML", init: `{"id":"d1"}`, upload: `<html/>`, wantErr: "answer is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if r.URL.Path == "/uploadInit" {
					_, _ = io.WriteString(w, tc.init)
					return
				}
				_, _ = io.WriteString(w, tc.upload)
			}))
			t.Cleanup(srv.Close)
			c, err := workfronthook.NewClient(workfronthook.Settings{BaseURL: srv.URL, APIKey: key}, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Deliver(ctx(t), targetstest.NewDelivery(targetstest.File{Name: "a", Data: []byte("x")}, params))
			if !targets.IsPermanent(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want a permanent error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNumericID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/uploadInit" {
			_, _ = io.WriteString(w, `{"id":1234,"kind":"file"}`)
			return
		}
		if r.URL.Query().Get("id") != "1234" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, `{"result":"success"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := workfronthook.NewClient(workfronthook.Settings{BaseURL: srv.URL, APIKey: key}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Deliver(ctx(t), targetstest.NewDelivery(targetstest.File{Name: "a", Data: []byte("x")}, params))
	if err != nil || res.RemoteID != "1234" {
		t.Errorf("got %+v, %v", res, err)
	}
}

func TestSaveFailureStopsBeforeUpload(t *testing.T) {
	c, f := setup(t, fake.Options{}, workfronthook.Settings{})
	d := targets.NewDelivery(
		func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil },
		func(context.Context, targets.Checkpoint) error { return errors.New("database down") },
	)
	d.Filename, d.Size, d.Params = "a", 1, params
	if _, err := c.Deliver(ctx(t), d); err == nil || targets.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	// Not even uploadInit: the mark that it was sent could not be saved.
	if got, want := steps(f), []string(nil); !equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
}

func TestCheckParams(t *testing.T) {
	c, _ := setup(t, fake.Options{}, workfronthook.Settings{})
	if err := c.CheckParams(map[string]string{}); err == nil || !strings.Contains(err.Error(), "missing param.parentId") {
		t.Errorf("got %v, want an error naming param.parentId", err)
	}
	if err := c.CheckParams(params); err != nil {
		t.Errorf("got %v", err)
	}
}

func TestNewClientRefusesBadSettings(t *testing.T) {
	ok := workfronthook.Settings{BaseURL: "https://docs.example.com/api", APIKey: key}
	for _, tc := range []struct {
		name string
		edit func(*workfronthook.Settings)
		want string
	}{
		{"no base_url", func(s *workfronthook.Settings) { s.BaseURL = "" }, "base_url is required"},
		{"ftp base_url", func(s *workfronthook.Settings) { s.BaseURL = "ftp://x/api" }, "http:// or https://"},
		{"base_url without host", func(s *workfronthook.Settings) { s.BaseURL = "https:///api" }, "http:// or https://"},
		{"base_url with query", func(s *workfronthook.Settings) { s.BaseURL = "https://x/api?a=b" }, "request_params"},
		{"no key", func(s *workfronthook.Settings) { s.APIKey = "" }, "api_key is required"},
		{"key with newline", func(s *workfronthook.Settings) { s.APIKey = "a\nb" }, "control characters"},
		{"header and query", func(s *workfronthook.Settings) { s.APIKeyHeader, s.APIKeyQuery = "apiKey", "apiKey" }, "not both"},
		{"bad header name", func(s *workfronthook.Settings) { s.APIKeyHeader = "api key" }, "not a valid header name"},
		{"query name clash", func(s *workfronthook.Settings) { s.APIKeyQuery = "id" }, "parameter of the protocol"},
		{"reserved request param", func(s *workfronthook.Settings) { s.RequestParams = map[string]string{"parentId": "x"} }, `may not set "parentId"`},
		{"request param is the key's", func(s *workfronthook.Settings) {
			s.APIKeyQuery, s.RequestParams = "token", map[string]string{"token": "x"}
		}, `may not set "token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			_, err := workfronthook.NewClient(s, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
	if _, err := workfronthook.NewClient(ok, nil); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
}

func TestNewFromTargetsFile(t *testing.T) {
	f := fake.New(fake.Options{APIKey: key, APIKeyQuery: "token"})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	yaml := `
targets:
  - name: dam
    kind: workfront-webhook
    base_url: ` + srv.URL + `
    api_key: ${DAM_KEY}
    api_key_query: token
    username: relay@example.com
    request_params:
      access_type: offline
    params:
      parentId: folder-9
`
	cfgs, err := targets.ParseFile(strings.NewReader(yaml), func(name string) (string, bool) {
		return key, name == "DAM_KEY"
	})
	if err != nil {
		t.Fatal(err)
	}
	set, err := targets.Build(cfgs, map[string]targets.Constructor{"workfront-webhook": workfronthook.New})
	if err != nil {
		t.Fatal(err)
	}
	tg := set["dam"]
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("x")}, tg.MergeParams(nil))
	if _, err := tg.Deliverer.Deliver(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	r := f.Requests()[0]
	if r.KeyIn != "query" || r.Query["parentId"] != "folder-9" || r.Query["access_type"] != "offline" || r.Username != "relay@example.com" {
		t.Errorf("uploadInit received %+v", r)
	}

	bad := strings.Replace(yaml, "api_key_query", "api_key_qeury", 1)
	cfgs, err = targets.ParseFile(strings.NewReader(bad), func(string) (string, bool) { return key, true })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := targets.Build(cfgs, map[string]targets.Constructor{"workfront-webhook": workfronthook.New}); err == nil {
		t.Error("a misspelt setting was accepted")
	}
}
