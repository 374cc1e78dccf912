package blueworks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	fake "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var activity = map[string]string{"locationField": "activity", "ancestorId": "bp-1", "parentId": "proc-1"}

// newEnv starts a fake account and a connector pointed at it; edit
// adjusts the connector's settings.
func newEnv(t *testing.T, opts fake.Options, edit func(*Settings)) (*Client, *fake.Server) {
	t.Helper()
	f := fake.New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s := Settings{BaseURL: srv.URL, ClientID: fake.ClientIDDefault, ClientSecret: fake.ClientSecretDefault}
	if opts.ClientID != "" {
		s.ClientID, s.ClientSecret = opts.ClientID, opts.ClientSecret
	}
	if edit != nil {
		edit(&s)
	}
	c, err := NewClient(s, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func deliver(t *testing.T, c *Client, name string, data []byte, params map[string]string) (targets.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Deliver(ctx, targetstest.NewDelivery(targetstest.File{Name: name, Data: data}, params))
}

// trace renders the requests the fake saw as "step:status" in order.
func trace(f *fake.Server) string {
	var out []string
	for _, r := range f.Requests() {
		s := fmt.Sprintf("%s:%d", r.Step, r.Status)
		if r.UploadStatus != "" {
			s += ":" + r.UploadStatus
		}
		if r.Dropped {
			s += ":dropped"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestSuite runs the connector suite with administrator credentials:
// ListFiles answers, so a lost FileUpload answer is exactly-once.
func TestSuite(t *testing.T) {
	targetstest.Run(t, targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
		c, f := newEnv(t, fake.Options{}, nil)
		return c, f, activity
	}})
}

func TestUploadStatuses(t *testing.T) {
	tests := []struct {
		status    string
		permanent bool
		want      string
	}{
		{fake.StatusFailed, false, "status FAILED"},
		{fake.StatusFailedDeleted, true, "virus"},
		{fake.StatusSize, true, "upload limit"},
		{fake.StatusSpace, true, "Blueworks account has no space left: free space or raise the quota, then retry the job"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			c, f := newEnv(t, fake.Options{}, nil)
			if err := f.FailUpload(1, tt.status); err != nil {
				t.Fatal(err)
			}
			data := targetstest.RandomBytes(10<<10, 7)
			_, err := deliver(t, c, "plan.pdf", data, activity)
			if err == nil || targets.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (permanent %v), want permanent=%v containing %q", err, targets.IsPermanent(err), tt.permanent, tt.want)
			}
			if n := len(f.Documents()); n != 0 {
				t.Fatalf("fake holds %d documents after status %s", n, tt.status)
			}
			res, err := deliver(t, c, "plan.pdf", data, activity)
			if err != nil {
				t.Fatalf("next attempt: %v", err)
			}
			docs := f.Documents()
			if len(docs) != 1 || docs[0].RemoteID != res.RemoteID {
				t.Fatalf("after retry: %d documents, remote id %q", len(docs), res.RemoteID)
			}
			if got, want := trace(f), "token:200 FileUpload:200:"+tt.status+" FileUpload:200:SUCCESS"; got != want {
				t.Errorf("requests %q, want %q", got, want)
			}
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	tests := []struct {
		step       string
		status     int
		retryAfter time.Duration
		permanent  bool
	}{
		{fake.StepToken, http.StatusServiceUnavailable, 0, false},
		{fake.StepToken, http.StatusTooManyRequests, 7 * time.Second, false},
		{fake.StepToken, http.StatusBadRequest, 0, true},
		{fake.StepUpload, http.StatusInternalServerError, 3 * time.Second, false},
		{fake.StepUpload, http.StatusTooManyRequests, 30 * time.Second, false},
		{fake.StepUpload, http.StatusMethodNotAllowed, 0, true},
		{fake.StepUpload, http.StatusForbidden, 0, true},
		{fake.StepUpload, http.StatusBadRequest, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d", tt.step, tt.status), func(t *testing.T) {
			c, f := newEnv(t, fake.Options{}, nil)
			f.Fail(tt.step, 1, tt.status, tt.retryAfter)
			_, err := deliver(t, c, "a.txt", []byte("hello"), activity)
			te := targets.Classify(err)
			if err == nil || te.Permanent != tt.permanent || te.RetryAfter != tt.retryAfter || te.StatusCode != tt.status {
				t.Fatalf("err = %v: permanent %v retry after %v status %d; want %v %v %d",
					err, te.Permanent, te.RetryAfter, te.StatusCode, tt.permanent, tt.retryAfter, tt.status)
			}
			if !strings.Contains(err.Error(), tt.step) {
				t.Errorf("error %q does not name the step %s", err, tt.step)
			}
			if n := len(f.Documents()); n != 0 {
				t.Fatalf("fake holds %d documents", n)
			}
		})
	}
}

func TestUnauthorizedRenewsTokenOnce(t *testing.T) {
	t.Run("expired token is renewed within the attempt", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		if _, err := deliver(t, c, "a.txt", []byte("a"), activity); err != nil {
			t.Fatal(err)
		}
		f.ExpireCredentials()
		if _, err := deliver(t, c, "b.txt", []byte("b"), activity); err != nil {
			t.Fatal(err)
		}
		want := "token:200 FileUpload:200:SUCCESS FileUpload:401 token:200 FileUpload:200:SUCCESS"
		if got := trace(f); got != want {
			t.Errorf("requests %q, want %q", got, want)
		}
	})
	t.Run("a second 401 is permanent", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		f.Fail(fake.StepUpload, 2, http.StatusUnauthorized, 0)
		_, err := deliver(t, c, "a.txt", []byte("a"), activity)
		if !targets.IsPermanent(err) {
			t.Fatalf("err = %v, want permanent", err)
		}
		if got, want := trace(f), "token:200 FileUpload:401 token:200 FileUpload:401"; got != want {
			t.Errorf("requests %q, want %q", got, want)
		}
	})
}

func TestTokenCachedAndRenewedBeforeExpiry(t *testing.T) {
	c, f := newEnv(t, fake.Options{}, nil)
	for i := range 3 {
		if _, err := deliver(t, c, fmt.Sprintf("f%d.txt", i), []byte{byte(i)}, activity); err != nil {
			t.Fatal(err)
		}
	}
	// The fake's tokens last an hour: 30 s before the end the connector
	// takes a new one rather than risk a 401.
	c.tokens.now = func() time.Time { return time.Now().Add(fake.TokenTTLDefault - 30*time.Second) }
	if _, err := deliver(t, c, "f3.txt", []byte{3}, activity); err != nil {
		t.Fatal(err)
	}
	want := "token:200 FileUpload:200:SUCCESS FileUpload:200:SUCCESS FileUpload:200:SUCCESS token:200 FileUpload:200:SUCCESS"
	if got := trace(f); got != want {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestConcurrentDeliveriesShareOneToken(t *testing.T) {
	c, f := newEnv(t, fake.Options{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := deliver(t, c, fmt.Sprintf("c%d.bin", i), targetstest.RandomBytes(20<<10, uint64(i)), activity)
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
	tokens := 0
	for _, r := range f.Requests() {
		if r.Step == fake.StepToken {
			tokens++
		}
	}
	if n := len(f.Documents()); tokens != 1 || n != 8 {
		t.Errorf("%d token requests and %d documents, want 1 and 8", tokens, n)
	}
}

func TestSizeLimit(t *testing.T) {
	t.Run("refused before sending", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, func(s *Settings) { s.MaxFileBytes = 1000 })
		if c.MaxFileBytes() != 1000 {
			t.Fatalf("MaxFileBytes = %d", c.MaxFileBytes())
		}
		_, err := deliver(t, c, "big.bin", make([]byte, 1001), activity)
		if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "max_file_bytes") {
			t.Fatalf("err = %v, want permanent naming max_file_bytes", err)
		}
		if n := len(f.Requests()); n != 0 {
			t.Fatalf("fake saw %d requests for a file over the limit", n)
		}
		if _, err := deliver(t, c, "fits.bin", make([]byte, 1000), activity); err != nil {
			t.Fatalf("file at the limit: %v", err)
		}
	})
	t.Run("account limit answers SIZE", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{MaxFileBytes: 500}, nil)
		_, err := deliver(t, c, "big.bin", make([]byte, 600), activity)
		if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "SIZE") {
			t.Fatalf("err = %v, want permanent SIZE", err)
		}
		if got := trace(f); got != "token:200 FileUpload:200:SIZE" {
			t.Errorf("requests %q", got)
		}
	})
	t.Run("default is 50 MB", func(t *testing.T) {
		c, _ := newEnv(t, fake.Options{}, nil)
		if c.MaxFileBytes() != 52428800 {
			t.Errorf("MaxFileBytes = %d", c.MaxFileBytes())
		}
	})
}

func TestAccountFull(t *testing.T) {
	c, f := newEnv(t, fake.Options{QuotaBytes: 1500}, nil)
	if _, err := deliver(t, c, "one.bin", make([]byte, 1000), activity); err != nil {
		t.Fatal(err)
	}
	_, err := deliver(t, c, "two.bin", targetstest.RandomBytes(1000, 2), activity)
	if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "free space or raise the quota") {
		t.Fatalf("err = %v, want permanent with what to do", err)
	}
	if n, used := len(f.Documents()), f.UsedBytes(); n != 1 || used != 1000 {
		t.Errorf("%d documents, %d bytes used; want 1, 1000", n, used)
	}
}

func TestDroppedConnection(t *testing.T) {
	for _, step := range []string{fake.StepToken, fake.StepUpload} {
		t.Run(step, func(t *testing.T) {
			c, f := newEnv(t, fake.Options{}, nil)
			f.Drop(step, 1)
			data := targetstest.RandomBytes(300<<10, 9)
			_, err := deliver(t, c, "drop.bin", data, activity)
			if err == nil || targets.IsPermanent(err) {
				t.Fatalf("err = %v, want retryable", err)
			}
			res, err := deliver(t, c, "drop.bin", data, activity)
			if err != nil {
				t.Fatal(err)
			}
			docs := f.Documents()
			if len(docs) != 1 || docs[0].RemoteID != res.RemoteID || docs[0].Size != int64(len(data)) {
				t.Fatalf("documents %+v, remote id %q", docs, res.RemoteID)
			}
		})
	}
}

func TestOnBehalfOf(t *testing.T) {
	opts := fake.Options{ServiceID: true, Users: []string{"admin", "alice"}}
	t.Run("required with a Service ID", func(t *testing.T) {
		c, f := newEnv(t, opts, nil)
		_, err := deliver(t, c, "a.txt", []byte("a"), activity)
		if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "X-On-Behalf-Of") {
			t.Fatalf("err = %v, want permanent naming X-On-Behalf-Of", err)
		}
		if n := len(f.Documents()); n != 0 {
			t.Fatalf("%d documents", n)
		}
	})
	t.Run("sent when configured", func(t *testing.T) {
		c, f := newEnv(t, opts, func(s *Settings) { s.OnBehalfOf = "alice" })
		if _, err := deliver(t, c, "a.txt", []byte("a"), activity); err != nil {
			t.Fatal(err)
		}
		reqs, docs := f.Requests(), f.Attachments()
		if last := reqs[len(reqs)-1]; last.OnBehalfOf != "alice" || last.APIVersion != APIVersion || !last.Bearer {
			t.Errorf("upload request %+v", last)
		}
		if len(docs) != 1 || docs[0].UploadUser != "alice" {
			t.Errorf("attachments %+v", docs)
		}
	})
}

func TestLocations(t *testing.T) {
	tests := []struct {
		params                   map[string]string
		loc, ancestor, parent    string
		sentAncestor, sentParent string
	}{
		{activity, "activity", "bp-1", "proc-1", "bp-1", "proc-1"},
		{map[string]string{"locationField": "app", "ancestorId": "pa", "parentId": "ap"}, "app", "pa", "ap", "pa", "ap"},
		{map[string]string{"locationField": "decision", "ancestorId": "dd", "parentId": "d"}, "decision", "dd", "d", "dd", "d"},
		{map[string]string{"locationField": "instance", "ancestorId": "w1", "parentId": "w1"}, "instance", "w1", "w1", "w1", "w1"},
		// Defaults for ids a location does not use are not sent.
		{map[string]string{"locationField": "policy", "ancestorId": "ignored", "parentId": "pol"}, "policy", "", "pol", "", "pol"},
		{map[string]string{"locationField": "post", "ancestorId": "x", "parentId": "y"}, "post", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.loc, func(t *testing.T) {
			c, f := newEnv(t, fake.Options{}, nil)
			data := []byte("attachment for " + tt.loc)
			res, err := deliver(t, c, "notes.txt", data, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			docs := f.Attachments()
			if len(docs) != 1 {
				t.Fatalf("%d attachments", len(docs))
			}
			a := docs[0]
			if a.ID != res.RemoteID || a.Location != tt.loc || a.AncestorID != tt.ancestor || a.ParentID != tt.parent || a.Type != "9" {
				t.Errorf("attachment %+v, remote id %q", a, res.RemoteID)
			}
			reqs := f.Requests()
			if r := reqs[len(reqs)-1]; r.Location != tt.loc || r.AncestorID != tt.sentAncestor || r.ParentID != tt.sentParent {
				t.Errorf("sent location %q ancestor %q parent %q", r.Location, r.AncestorID, r.ParentID)
			}
		})
	}
}

func TestCheckParams(t *testing.T) {
	tests := []struct {
		params map[string]string
		want   string // "" for valid
	}{
		{map[string]string{}, "missing param.locationField"},
		{map[string]string{"locationField": "folder"}, `param.locationField "folder" is not one of`},
		{map[string]string{"locationField": "activity", "parentId": "p"}, "missing param.ancestorId (the process blueprint ID"},
		{map[string]string{"locationField": "decision", "ancestorId": "a"}, "missing param.parentId (the decision ID"},
		{map[string]string{"locationField": "policy"}, "missing param.parentId (the policy ID"},
		{map[string]string{"locationField": "policy", "parentId": "p"}, ""},
		{map[string]string{"locationField": "post"}, ""},
		{activity, ""},
	}
	c, f := newEnv(t, fake.Options{}, nil)
	for _, tt := range tests {
		err := c.CheckParams(tt.params)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckParams(%v) = %v, want nil", tt.params, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckParams(%v) = %v, want %q", tt.params, err, tt.want)
		}
		_, err = deliver(t, c, "a.txt", []byte("a"), tt.params)
		if !targets.IsPermanent(err) {
			t.Errorf("Deliver(%v) = %v, want permanent", tt.params, err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("fake saw %d requests for invalid params, want none", n)
	}
}

func TestWrongCredentials(t *testing.T) {
	const secret = "not-the-secret-42"
	c, f := newEnv(t, fake.Options{}, func(s *Settings) { s.ClientSecret = secret })
	_, err := deliver(t, c, "a.txt", []byte("a"), activity)
	if !targets.IsCredentials(err) || targets.IsPermanent(err) || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("err = %v, want refused credentials (invalid_client), not permanent", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
	if got := trace(f); got != "token:401" {
		t.Errorf("requests %q", got)
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status    string
		ok        bool
		permanent bool
	}{
		{"SUCCESS", true, false},
		{"FAILED", false, false},
		{"FAILED_DELETED", false, true},
		{"SIZE", false, true},
		{"SPACE", false, true},
		{"", false, false},
		{"QUEUED", false, false},
	}
	for _, tt := range tests {
		err := statusError(tt.status)
		if (err == nil) != tt.ok || targets.IsPermanent(err) != tt.permanent {
			t.Errorf("statusError(%q) = %v, want ok=%v permanent=%v", tt.status, err, tt.ok, tt.permanent)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"valid", "base_url: https://www.blueworkslive.com/\n    client_id: id\n    client_secret: s", ""},
		{"unknown key", "base_url: https://x\n    client_id: id\n    client_secret: s\n    token_url: https://y", "token_url"},
		{"no base_url", "client_id: id\n    client_secret: s", "base_url is required"},
		{"no secret", "base_url: https://x\n    client_id: id", "client_secret"},
		{"credentials in url", "base_url: https://u:p@x\n    client_id: id\n    client_secret: s", "must not hold credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "targets:\n  - name: bw\n    kind: blueworks\n    " + tt.yaml + "\n"
			cfgs, err := targets.ParseFile(strings.NewReader(file), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(cfgs[0])
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := d.(*Client)
			if c.uploadURL != "https://www.blueworkslive.com/scr/api/FileUpload" || c.tokens.tokenURL != "https://www.blueworkslive.com/oauth/token" || c.MaxFileBytes() != MaxFileBytesDefault {
				t.Errorf("client %q %q %d", c.uploadURL, c.tokens.tokenURL, c.MaxFileBytes())
			}
		})
	}
}

func TestExpiresIn(t *testing.T) {
	tests := map[string]time.Duration{`3600`: time.Hour, `"120"`: 2 * time.Minute, ``: time.Hour, `null`: time.Hour, `0`: time.Hour}
	for raw, want := range tests {
		if got := expiresIn([]byte(raw)); got != want {
			t.Errorf("expiresIn(%s) = %v, want %v", raw, got, want)
		}
	}
}

func TestCanceledWhileWaitingForToken(t *testing.T) {
	ts := newTokenSource(http.DefaultClient, "http://127.0.0.1:1/oauth/token", "id", "s")
	ts.sem <- struct{}{} // another delivery is fetching
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ts.Token(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
