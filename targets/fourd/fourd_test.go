package fourd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	fake "github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

const (
	testUser     = "ferry"
	testPassword = "s3cret-Pa55"
)

// clock is a settable clock shared by the fake and the connector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// setup starts a fake 4D server and a connector pointed at it. Settings
// without URL get the fake's, and Invoices/pdf as defaults.
func setup(t *testing.T, opts fake.Options, s Settings) (*Client, *fake.Server, *clock) {
	t.Helper()
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	f := fake.New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	if s.URL == "" {
		s.URL = srv.URL
	}
	if s.Dataclass == "" {
		s.Dataclass = "Invoices"
	}
	if s.Attribute == "" {
		s.Attribute = "pdf"
	}
	c, err := NewClient(s, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.now = clk.Now
	return c, f, clk
}

func withLogin() fake.Options { return fake.Options{Username: testUser, Password: testPassword} }

func credentials() Settings { return Settings{Username: testUser, Password: testPassword} }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func delivery(name string, data []byte, params map[string]string) *targets.Delivery {
	return targetstest.NewDelivery(targetstest.File{Name: name, Data: data}, params)
}

func steps(f *fake.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Step)
	}
	return out
}

func TestSuite(t *testing.T) {
	targetstest.Run(t, targetstest.Harness{
		New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
			c, f, _ := setup(t, withLogin(), credentials())
			return c, f, map[string]string{"key": "7"}
		},
	})
}

func TestStepsAndWhatArrives(t *testing.T) {
	pdf := targetstest.RandomBytes(70_000, 1)
	tests := []struct {
		name        string
		opts        fake.Options
		settings    Settings
		params      map[string]string
		contentType string
		wantSteps   []string
		wantQuery   string
		wantCType   string
		wantAttr    string
	}{
		{
			name:      "open REST, stamp read first",
			params:    map[string]string{"key": "12"},
			wantSteps: []string{fake.StepRead, fake.StepUpload, fake.StepUpdate},
			wantQuery: "$binary=true", wantCType: "application/octet-stream", wantAttr: "pdf",
		},
		{
			name:      "stamp given, no read",
			params:    map[string]string{"key": "12", "stamp": "1"},
			wantSteps: []string{fake.StepUpload, fake.StepUpdate},
			wantQuery: "$binary=true", wantCType: "application/octet-stream", wantAttr: "pdf",
		},
		{
			name: "login first", opts: withLogin(), settings: credentials(),
			params:    map[string]string{"key": "12"},
			wantSteps: []string{fake.StepLogin, fake.StepRead, fake.StepUpload, fake.StepUpdate},
			wantQuery: "$binary=true", wantCType: "application/octet-stream", wantAttr: "pdf",
		},
		{
			name:      "image as raw picture, with timeout",
			settings:  Settings{UploadTimeout: 10 * time.Minute},
			params:    map[string]string{"key": "12", "attribute": "scan", "stamp": "1"},
			wantSteps: []string{fake.StepUpload, fake.StepUpdate}, contentType: "image/png",
			wantQuery: "$rawPict=true&$timeout=600", wantCType: "image/png", wantAttr: "scan",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t, tt.opts, tt.settings)
			d := delivery("Facture été.pdf", pdf, tt.params)
			if tt.contentType != "" {
				d.ContentType = tt.contentType
			}
			res, err := c.Deliver(ctx(t), d)
			if err != nil {
				t.Fatal(err)
			}
			if got := steps(f); !slices.Equal(got, tt.wantSteps) {
				t.Fatalf("steps %v, want %v", got, tt.wantSteps)
			}
			reqs := f.Requests()
			up := reqs[len(reqs)-2]
			if up.Path != "/rest/$upload?"+tt.wantQuery || up.ContentType != tt.wantCType {
				t.Errorf("upload %s as %s, want query %s as %s", up.Path, up.ContentType, tt.wantQuery, tt.wantCType)
			}
			if up.BodySHA256 != d.SHA256 || up.BodySize != int64(len(pdf)) || up.ContentLength != int64(len(pdf)) {
				t.Errorf("upload carried %d bytes (Content-Length %d) sha %s", up.BodySize, up.ContentLength, up.BodySHA256)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(reqs[len(reqs)-1].JSON), &body); err != nil {
				t.Fatal(err)
			}
			if body["__KEY"] != "12" || body["__STAMP"] != float64(1) || body[tt.wantAttr] == nil {
				t.Errorf("update body %v", body)
			}
			docs := f.Documents()
			want := targetstest.Document{RemoteID: "Invoices(12)/" + tt.wantAttr, Name: "Facture été.pdf", SHA256: d.SHA256, Size: int64(len(pdf))}
			if len(docs) != 1 || docs[0] != want {
				t.Fatalf("documents %+v, want %+v", docs, want)
			}
			if res.RemoteID != want.RemoteID || res.StatusCode != http.StatusOK {
				t.Errorf("result %+v", res)
			}
			if e, _ := f.Entity("Invoices", "12"); e.Stamp != 2 {
				t.Errorf("entity stamp %d after one update, want 2", e.Stamp)
			}
			for k := range d.Checkpoint {
				if k != CheckpointUploadID && k != CheckpointUploadedAt && k != CheckpointUploadTimeout && k != CheckpointUpdateStamp {
					t.Errorf("unexpected checkpoint key %q", k)
				}
			}
			if d.Checkpoint[CheckpointUploadID] == "" {
				t.Error("upload id not saved in the checkpoint")
			}
		})
	}
}

func TestNameAttribute(t *testing.T) {
	c, f, _ := setup(t, fake.Options{}, Settings{NameAttribute: "fileName"})
	d := delivery("inv003.pdf", []byte("%PDF-1.7"), map[string]string{"key": "3"})
	if _, err := c.Deliver(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	e, _ := f.Entity("Invoices", "3")
	if e.Texts["fileName"] != "inv003.pdf" || e.Files["pdf"].SHA256 != d.SHA256 {
		t.Fatalf("entity %+v", e)
	}
}

func TestStaleStamp(t *testing.T) {
	tests := []struct {
		name       string
		stale      int // updates that find the entity saved by someone else
		wantErr    bool
		wantUpdate int
	}{
		{"one other writer", 1, false, 2},
		{"three in a row", 3, false, 4},
		{"keeps changing", 4, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t, fake.Options{}, Settings{})
			if err := f.Inject(fake.Fault{Step: fake.StepUpdate, Mode: fake.ModeStale, Count: tt.stale}); err != nil {
				t.Fatal(err)
			}
			d := delivery("a.pdf", []byte("stale"), map[string]string{"key": "5", "stamp": "1"})
			_, err := c.Deliver(ctx(t), d)
			if tt.wantErr {
				if err == nil || targets.IsPermanent(err) {
					t.Fatalf("want a retryable error, got %v", err)
				}
				if n := len(f.Documents()); n != 0 {
					t.Fatalf("%d documents after refused updates", n)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(strings.Join(steps(f), ","), fake.StepUpdate); n != tt.wantUpdate {
				t.Errorf("%d updates, want %d", n, tt.wantUpdate)
			}
			// The retry uses the stamp 4D gave in its refusal, without a read.
			if slices.Contains(steps(f), fake.StepRead) {
				t.Errorf("steps %v: the current stamp is in 4D's answer, no read needed", steps(f))
			}
			if !tt.wantErr {
				if e, _ := f.Entity("Invoices", "5"); e.Files["pdf"].SHA256 != d.SHA256 {
					t.Errorf("entity %+v", e)
				}
			}
		})
	}
}

func TestStaleStampAfterTouch(t *testing.T) {
	c, f, _ := setup(t, fake.Options{}, Settings{})
	f.Touch("Invoices", "9")
	f.Touch("Invoices", "9") // __STAMP is now 3
	d := delivery("a.pdf", []byte("touched"), map[string]string{"key": "9", "stamp": "1"})
	if _, err := c.Deliver(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	if e, _ := f.Entity("Invoices", "9"); e.Stamp != 4 || e.Files["pdf"].SHA256 != d.SHA256 {
		t.Fatalf("entity %+v", e)
	}
}

func TestUploadExpiry(t *testing.T) {
	t.Run("saved ID too old is uploaded again", func(t *testing.T) {
		c, f, clk := setup(t, fake.Options{}, Settings{})
		f.FailNext(fake.StepUpdate)
		d := delivery("a.pdf", []byte("expiring"), map[string]string{"key": "1"})
		if _, err := c.Deliver(ctx(t), d); err == nil {
			t.Fatal("want the failed update's error")
		}
		first := d.Checkpoint[CheckpointUploadID]
		clk.Advance(110 * time.Second) // within 120 s, but past the margin
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		want := []string{"read", "upload", "update", "read", "upload", "update"}
		if got := steps(f); !slices.Equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
		if d.Checkpoint[CheckpointUploadID] == first {
			t.Error("checkpoint still holds the expired upload id")
		}
		if docs := f.Documents(); len(docs) != 1 || docs[0].SHA256 != d.SHA256 {
			t.Fatalf("documents %+v", docs)
		}
	})
	t.Run("saved ID still good is reused", func(t *testing.T) {
		c, f, clk := setup(t, fake.Options{}, Settings{UploadTimeout: 10 * time.Minute})
		f.FailNext(fake.StepUpdate)
		d := delivery("a.pdf", []byte("kept"), map[string]string{"key": "1"})
		if _, err := c.Deliver(ctx(t), d); err == nil {
			t.Fatal("want the failed update's error")
		}
		clk.Advance(5 * time.Minute)
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		want := []string{"read", "upload", "update", "read", "update"}
		if got := steps(f); !slices.Equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
	})
	t.Run("4D forgot the ID", func(t *testing.T) {
		c, f, _ := setup(t, fake.Options{}, Settings{})
		if err := f.Inject(fake.Fault{Step: fake.StepUpdate, Mode: fake.ModeExpireUpload}); err != nil {
			t.Fatal(err)
		}
		d := delivery("a.pdf", []byte("forgotten"), map[string]string{"key": "1", "stamp": "1"})
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		want := []string{"upload", "update", "upload", "update"}
		if got := steps(f); !slices.Equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
		if docs := f.Documents(); len(docs) != 1 || docs[0].SHA256 != d.SHA256 {
			t.Fatalf("documents %+v", docs)
		}
	})
	t.Run("4D forgets it twice", func(t *testing.T) {
		c, f, _ := setup(t, fake.Options{}, Settings{})
		if err := f.Inject(fake.Fault{Step: fake.StepUpdate, Mode: fake.ModeExpireUpload, Count: 2}); err != nil {
			t.Fatal(err)
		}
		d := delivery("a.pdf", []byte("forgotten"), map[string]string{"key": "1", "stamp": "1"})
		_, err := c.Deliver(ctx(t), d)
		if err == nil || targets.IsPermanent(err) {
			t.Fatalf("want a retryable error, got %v", err)
		}
		if d.Checkpoint[CheckpointUploadID] != "" {
			t.Errorf("checkpoint %v, want the forgotten upload cleared", d.Checkpoint)
		}
		if _, err := c.Deliver(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if n := len(f.Documents()); n != 1 {
			t.Fatalf("%d documents", n)
		}
	})
}

func TestLostAnswers(t *testing.T) {
	tests := []struct {
		name   string
		step   string
		mode   fake.Mode
		params map[string]string
	}{
		{"upload dropped", fake.StepUpload, fake.ModeDrop, map[string]string{"key": "2"}},
		{"upload answer lost", fake.StepUpload, fake.ModeDropAfter, map[string]string{"key": "2"}},
		{"update dropped", fake.StepUpdate, fake.ModeDrop, map[string]string{"key": "2"}},
		// The update was saved but its answer lost: the retry finds its
		// own stamp stale, takes the new one and saves again.
		{"update answer lost, stamp given", fake.StepUpdate, fake.ModeDropAfter, map[string]string{"key": "2", "stamp": "1"}},
		{"update answer lost", fake.StepUpdate, fake.ModeDropAfter, map[string]string{"key": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t, fake.Options{}, Settings{})
			if err := f.Inject(fake.Fault{Step: tt.step, Mode: tt.mode}); err != nil {
				t.Fatal(err)
			}
			d := delivery("lost.pdf", targetstest.RandomBytes(20_000, 9), tt.params)
			_, err := c.Deliver(ctx(t), d)
			if err == nil || targets.IsPermanent(err) {
				t.Fatalf("want a retryable error, got %v", err)
			}
			res, err := c.Deliver(ctx(t), d)
			if err != nil {
				t.Fatal(err)
			}
			docs := f.Documents()
			if len(docs) != 1 || docs[0].SHA256 != d.SHA256 || docs[0].RemoteID != res.RemoteID {
				t.Fatalf("documents %+v, result %+v", docs, res)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name      string
		opts      fake.Options
		settings  Settings
		params    map[string]string
		inject    *fake.Fault
		permanent bool
		// credentials: refused credentials, which pause the target.
		credentials bool
		retryIn     time.Duration
		noUpload    bool
	}{
		{name: "unknown key", params: map[string]string{"key": "404"}, permanent: true, noUpload: true},
		{name: "unknown key, stamp given", params: map[string]string{"key": "404", "stamp": "1"}, permanent: true},
		{name: "unknown dataclass", params: map[string]string{"key": "1", "dataclass": "Nope"}, permanent: true, noUpload: true},
		{name: "unknown attribute", params: map[string]string{"key": "1", "attribute": "nope"}, permanent: true},
		{name: "missing key", params: map[string]string{}, permanent: true, noUpload: true},
		{name: "bad stamp", params: map[string]string{"key": "1", "stamp": "x"}, permanent: true, noUpload: true},
		{name: "wrong password", opts: withLogin(), settings: Settings{Username: testUser, Password: "wrong"},
			params: map[string]string{"key": "1"}, credentials: true, noUpload: true},
		{name: "credentials needed", opts: withLogin(), params: map[string]string{"key": "1"}, credentials: true, noUpload: true},
		{name: "upload 400", params: map[string]string{"key": "1"}, permanent: true,
			inject: &fake.Fault{Step: fake.StepUpload, Status: http.StatusBadRequest}},
		{name: "update 429", params: map[string]string{"key": "1"}, retryIn: 7 * time.Second,
			inject: &fake.Fault{Step: fake.StepUpdate, Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}},
		{name: "read 500", params: map[string]string{"key": "1"}, noUpload: true,
			inject: &fake.Fault{Step: fake.StepRead, Status: http.StatusInternalServerError}},
		{name: "sessions exhausted", opts: withLogin(), settings: credentials(), params: map[string]string{"key": "1"}, noUpload: true,
			inject: &fake.Fault{Step: fake.StepLogin, Status: http.StatusPaymentRequired, RetryAfter: 30 * time.Second}, retryIn: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f, _ := setup(t, tt.opts, tt.settings)
			if tt.inject != nil {
				if err := f.Inject(*tt.inject); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Deliver(ctx(t), delivery("r.pdf", []byte("refused"), tt.params))
			if err == nil {
				t.Fatal("delivery succeeded")
			}
			te := targets.Classify(err)
			if te.Permanent != tt.permanent || te.RetryAfter != tt.retryIn || te.Credentials != tt.credentials {
				t.Errorf("permanent=%v retryAfter=%v, want %v %v: %v", te.Permanent, te.RetryAfter, tt.permanent, tt.retryIn, err)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error shows the password: %v", err)
			}
			if n := len(f.Documents()); n != 0 {
				t.Errorf("%d documents", n)
			}
			if tt.noUpload && slices.Contains(steps(f), fake.StepUpload) {
				t.Errorf("steps %v: bytes sent for a job that could not be attached", steps(f))
			}
		})
	}
}

func TestConcurrentDeliveriesLogInOnceAfterExpiry(t *testing.T) {
	c, f, _ := setup(t, withLogin(), credentials())
	if _, err := c.Deliver(ctx(t), delivery("0.pdf", []byte("zero"), map[string]string{"key": "50"})); err != nil {
		t.Fatal(err)
	}
	f.ExpireCredentials()
	keys := []string{"51", "52", "53", "54", "55", "56"}
	errs := make(chan error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			_, err := c.Deliver(ctx(t), delivery(k+".pdf", targetstest.RandomBytes(5000, uint64(i)), map[string]string{"key": k}))
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
	logins := 0
	for _, r := range f.Requests() {
		if r.Step == fake.StepLogin {
			logins++
			if r.Username != testUser {
				t.Errorf("login as %q", r.Username)
			}
		}
	}
	if logins != 2 {
		t.Errorf("%d logins, want 2 (the first, one after the expiry)", logins)
	}
	if n := len(f.Documents()); n != len(keys)+1 {
		t.Errorf("%d documents, want %d", n, len(keys)+1)
	}
}

func TestReloginResendsUploadBytes(t *testing.T) {
	c, f, _ := setup(t, withLogin(), credentials())
	params := map[string]string{"key": "60", "stamp": "1"}
	if _, err := c.Deliver(ctx(t), delivery("1.pdf", []byte("first"), params)); err != nil {
		t.Fatal(err)
	}
	f.ExpireCredentials()
	d := delivery("2.pdf", targetstest.RandomBytes(300_000, 3), map[string]string{"key": "61", "stamp": "1"})
	if _, err := c.Deliver(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	want := []string{"login", "upload", "update", "upload", "login", "upload", "update"}
	if got := steps(f); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	reqs := f.Requests()
	if reqs[3].Status != http.StatusUnauthorized || reqs[5].Status != http.StatusOK || reqs[5].BodySHA256 != d.SHA256 {
		t.Errorf("upload after re-login: %+v", reqs[5])
	}
	if docs := f.Documents(); len(docs) != 2 || docs[1].SHA256 != d.SHA256 {
		t.Fatalf("documents %+v", docs)
	}
}

func TestOpenRESTKeepsGuestSessionCookie(t *testing.T) {
	var mu sync.Mutex
	var cookies []string
	f := fake.New(fake.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cookies = append(cookies, r.Header.Get("Cookie"))
		mu.Unlock()
		// 4D opens a guest session on the first request.
		http.SetCookie(w, &http.Cookie{Name: "WASID4D", Value: "GUEST1", Path: "/"})
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Settings{URL: srv.URL, Dataclass: "Invoices", Attribute: "pdf"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deliver(ctx(t), delivery("g.pdf", []byte("guest"), map[string]string{"key": "4"})); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "WASID4D=GUEST1", "WASID4D=GUEST1"}
	if !slices.Equal(cookies, want) {
		t.Fatalf("cookies sent %q, want %q", cookies, want)
	}
}

func TestCheckParams(t *testing.T) {
	c, err := NewClient(Settings{URL: "https://4d.example.com", Attribute: "pdf"}, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		params map[string]string
		want   string // part of the error, "" for none
	}{
		{map[string]string{"key": "1", "dataclass": "Invoices"}, ""},
		{map[string]string{"key": "1", "dataclass": "Factures_été", "stamp": "12"}, ""},
		{map[string]string{"dataclass": "Invoices"}, "param.key"},
		{map[string]string{"key": "1"}, "param.dataclass"},
		{map[string]string{"key": "1", "dataclass": "Invoices", "attribute": "no such"}, "param.attribute"},
		{map[string]string{"key": "1)/x(", "dataclass": "Invoices"}, "param.key"},
		{map[string]string{"key": "1", "dataclass": "Invoices", "stamp": "-2"}, "param.stamp"},
	}
	for _, tt := range tests {
		err := c.CheckParams(tt.params)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.params, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: error %v, want one naming %s", tt.params, err, tt.want)
		}
	}
	var sl targets.SizeLimiter = c
	if sl.MaxFileBytes() != MaxFileBytesDefault {
		t.Errorf("max file bytes %d", sl.MaxFileBytes())
	}
}

func TestNewClientSettings(t *testing.T) {
	tests := []struct {
		s    Settings
		want string
	}{
		{Settings{}, "url is required"},
		{Settings{URL: "4d.example.com"}, "must start with"},
		{Settings{URL: "https://x", Password: "p"}, "without username"},
		{Settings{URL: "https://x", UploadTimeout: 1500 * time.Millisecond}, "upload_timeout"},
		{Settings{URL: "https://x", Attribute: "a b"}, "attribute"},
		{Settings{URL: "https://x", StampRetries: -2}, "stamp_retries"},
	}
	for _, tt := range tests {
		if _, err := NewClient(tt.s, http.DefaultClient); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.s, err, tt.want)
		}
	}
	cfgs, err := targets.ParseFile(strings.NewReader(`
targets:
  - name: erp
    kind: 4d
    base_url: https://4d.example.com
    dataclass: Invoices
    attribute: pdf
    username: ferry
    password: ${FOURD_PASSWORD}
    upload_timeout: 5m
`), func(string) (string, bool) { return "pw", true })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	c := d.(*Client)
	if c.s.Password != "pw" || c.s.UploadTimeout != 5*time.Minute || c.base != "https://4d.example.com/rest" {
		t.Errorf("settings %+v", c.s)
	}
	if _, err := New(targets.Config{Name: "x", Kind: "4d"}); err == nil {
		t.Error("New without url succeeded")
	}
}

// TestErrorClassification is 4D's answers over status and errCode: a 4D
// error about the request (a configuration error: no such dataclass,
// attribute or entity, or any coded refusal of a 4xx) fails that job only,
// at once, whatever the status; answers that say "later" stay retryable.
func TestErrorClassification(t *testing.T) {
	const (
		retry = iota
		permanent
		credentials
	)
	tests := []struct {
		status, code int
		want         int
	}{
		// Configuration errors: permanent whatever the status.
		{http.StatusNotFound, fake.ErrCodeNoDataclass, permanent},
		{http.StatusNotFound, errNoEntity, permanent},
		{http.StatusBadRequest, fake.ErrCodeNoDataclass, permanent},
		{http.StatusInternalServerError, fake.ErrCodeNoDataclass, permanent},
		{http.StatusInternalServerError, errNoAttribute, permanent},
		// A coded 4xx is a refusal of this request, whatever the code.
		{http.StatusBadRequest, 1234, permanent},
		{http.StatusNotFound, 1234, permanent},
		{http.StatusForbidden, 1234, permanent},
		{http.StatusBadRequest, 0, permanent},
		{http.StatusNotFound, 0, permanent},
		// Transient: 5xx without a configuration code, 408, 429, 503
		// whatever their code, and 402 (no free 4D session).
		{http.StatusInternalServerError, 0, retry},
		{http.StatusInternalServerError, 1234, retry},
		{http.StatusBadGateway, 1234, retry},
		{http.StatusServiceUnavailable, 0, retry},
		{http.StatusServiceUnavailable, fake.ErrCodeNoDataclass, retry},
		{http.StatusTooManyRequests, 1234, retry},
		{http.StatusRequestTimeout, 1234, retry},
		{http.StatusPaymentRequired, 1234, retry},
		// 401 after the one new login: refused credentials.
		{http.StatusUnauthorized, 1234, credentials},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_errCode_%d", tt.status, tt.code), func(t *testing.T) {
			c, f, _ := setup(t, fake.Options{}, Settings{})
			if err := f.Inject(fake.Fault{Step: fake.StepRead, Count: 2, Status: tt.status, ErrCode: tt.code}); err != nil {
				t.Fatal(err)
			}
			_, err := c.Deliver(ctx(t), delivery("c.pdf", []byte("classified"), map[string]string{"key": "1"}))
			te := targets.Classify(err)
			got := retry
			switch {
			case err == nil:
				t.Fatal("delivery succeeded")
			case te.Credentials:
				got = credentials
			case te.Permanent:
				got = permanent
			}
			if got != tt.want {
				t.Fatalf("class %d, want %d (0 retry, 1 permanent, 2 credentials): %v", got, tt.want, err)
			}
			if tt.code != 0 && !strings.Contains(err.Error(), strconv.Itoa(tt.code)) {
				t.Errorf("error %q does not name errCode %d", err, tt.code)
			}
		})
	}
}

// TestConfigErrorsFailTheJobOnly delivers to a dataclass 4D does not have,
// as the fake answers it (404, errCode 1800): the job fails at its first
// attempt without sending bytes, and a lost update answer whose lookup
// meets the same 404 is not "cannot tell" either.
func TestConfigErrorsFailTheJobOnly(t *testing.T) {
	t.Run("unknown dataclass", func(t *testing.T) {
		c, f, _ := setup(t, fake.Options{}, Settings{})
		_, err := c.Deliver(ctx(t), delivery("c.pdf", []byte("x"), map[string]string{"key": "1", "dataclass": "Nope"}))
		if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "1800") {
			t.Fatalf("err = %v, want permanent naming errCode 1800", err)
		}
		if got := steps(f); !slices.Equal(got, []string{fake.StepRead}) {
			t.Errorf("steps %v, want one read", got)
		}
	})
	t.Run("lookup after a lost answer", func(t *testing.T) {
		c, f, _ := setup(t, fake.Options{}, Settings{})
		d := delivery("c.pdf", []byte("x"), map[string]string{"key": "3"})
		f.LoseAnswer(fake.StepUpdate)
		if _, err := c.Deliver(ctx(t), d); err == nil || targets.IsPermanent(err) {
			t.Fatalf("lost answer: %v, want retryable", err)
		}
		if err := f.Inject(fake.Fault{Step: fake.StepRead, Status: http.StatusNotFound, ErrCode: fake.ErrCodeNoDataclass}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Deliver(ctx(t), d)
		if !targets.IsPermanent(err) || strings.Contains(err.Error(), "cannot tell") {
			t.Fatalf("err = %v, want permanent, not cannot tell", err)
		}
	})
}
