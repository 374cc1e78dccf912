package targets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-relay/ferry/targets"
)

func TestParseFile(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, yaml, err string
		check           func(t *testing.T, cs []targets.Config)
	}{
		{name: "defaults", yaml: "targets:\n  - {name: a, kind: http, url: 'http://x'}\n", check: func(t *testing.T, cs []targets.Config) {
			c := cs[0]
			if c.MaxAttempts != 10 || c.Backoff.Initial != 2*time.Second || c.Backoff.Max != 10*time.Minute || c.Timeout != 5*time.Minute || c.Concurrency != 4 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "policy", yaml: "targets:\n  - name: a\n    kind: http\n    max_attempts: 3\n    backoff: {initial: 1s, max: 1m}\n    timeout: 10s\n    concurrency: 2\n    params: {parentId: p}\n", check: func(t *testing.T, cs []targets.Config) {
			c := cs[0]
			if c.MaxAttempts != 3 || c.Backoff.Initial != time.Second || c.Backoff.Max != time.Minute || c.Timeout != 10*time.Second || c.Concurrency != 2 || c.Params["parentId"] != "p" {
				t.Errorf("policy: %+v", c)
			}
		}},
		{name: "env", yaml: "targets:\n  - {name: a, kind: http, url: 'http://x', headers: {Authorization: 'Bearer ${TOKEN}'}}\n", check: func(t *testing.T, cs []targets.Config) {
			var s struct {
				URL     string            `yaml:"url"`
				Headers map[string]string `yaml:"headers"`
			}
			if err := cs[0].Settings(&s); err != nil || s.Headers["Authorization"] != "Bearer s3cret" {
				t.Errorf("settings %+v %v", s, err)
			}
		}},
		{name: "unset variable", yaml: "targets:\n  - {name: a, kind: http, key: '${NOPE}'}\n", err: "NOPE"},
		{name: "duplicate", yaml: "targets:\n  - {name: a, kind: http}\n  - {name: a, kind: http}\n", err: "twice"},
		{name: "bad name", yaml: "targets:\n  - {name: 'a.b', kind: http}\n", err: "target name"},
		{name: "no kind", yaml: "targets:\n  - {name: a}\n", err: "kind is required"},
		{name: "bad backoff", yaml: "targets:\n  - {name: a, kind: http, backoff: {initial: 1m, max: 1s}}\n", err: "backoff"},
		{name: "not yaml", yaml: "targets: [", err: "targets file"},
		{name: "versions", yaml: "targets:\n  - {name: a, kind: http, versions: put, on_conflict: overwrite}\n", check: func(t *testing.T, cs []targets.Config) {
			if cs[0].Versions != "put" || cs[0].OnConflict != "overwrite" {
				t.Errorf("versions %q on_conflict %q", cs[0].Versions, cs[0].OnConflict)
			}
			var s struct{}
			if err := cs[0].Settings(&s); err != nil {
				t.Errorf("versions and on_conflict are common keys, not the kind's: %v", err)
			}
		}},
		{name: "bad versions", yaml: "targets:\n  - {name: a, kind: http, versions: replace}\n", err: `versions "replace"`},
		{name: "bad on_conflict", yaml: "targets:\n  - {name: a, kind: http, versions: put, on_conflict: merge}\n", err: `on_conflict "merge"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := targets.ParseFile(strings.NewReader(tc.yaml), lookup)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cs)
		})
	}
}

// Secrets are expanded inside scalar values after the YAML is parsed, so
// YAML syntax in a secret ("pa #ss" would lose its comment, "a: b" would
// break the file, a quote would end the string) stays the secret's.
func TestEnvExpandedInsideScalars(t *testing.T) {
	secrets := map[string]string{
		"PASS":  "pa #ss",
		"COLON": "a: b",
		"QUOTE": `it's "quoted"`,
		"MULTI": "line1\nline2 - [x]",
		"NUM":   "7",
		"BOOL":  "true",
		"NULL":  "~",
	}
	lookup := func(k string) (string, bool) { v, ok := secrets[k]; return v, ok }
	file := "targets:\n" +
		"  - name: a\n" +
		"    kind: http\n" +
		"    max_attempts: ${NUM}\n" +
		"    plain: ${PASS}\n" +
		"    colon: ${COLON}\n" +
		"    single: '${QUOTE}'\n" +
		"    double: \"x ${MULTI} y\"\n" +
		"    dollar: 'cost: $$5 ${NUM}'\n" +
		"    flag: ${BOOL}\n" +
		"    tilde: ${NULL}\n" +
		"    # a comment with ${UNSET_IN_COMMENT} is not expanded\n"
	cs, err := targets.ParseFile(strings.NewReader(file), lookup)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Plain, Colon, Single, Double, Dollar, Flag, Tilde string
	}
	if err := cs[0].Settings(&s); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"plain":  {s.Plain, "pa #ss"},
		"colon":  {s.Colon, "a: b"},
		"single": {s.Single, `it's "quoted"`},
		"double": {s.Double, "x line1\nline2 - [x] y"},
		"dollar": {s.Dollar, "cost: $5 7"},
		"flag":   {s.Flag, "true"},
		"tilde":  {s.Tilde, "~"},
	}
	for k, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", k, v[0], v[1])
		}
	}
	if cs[0].MaxAttempts != 7 {
		t.Errorf("max_attempts %d, want 7 (a number from the environment)", cs[0].MaxAttempts)
	}
}

func TestSettingsRefuseUnknownKeys(t *testing.T) {
	cs, err := targets.ParseFile(strings.NewReader("targets:\n  - {name: a, kind: http, urll: 'http://x'}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		URL string `yaml:"url"`
	}
	if err := cs[0].Settings(&s); err == nil || !strings.Contains(err.Error(), "urll") {
		t.Fatalf("a misspelt setting must be refused, got %v", err)
	}
}

func TestVersionsFor(t *testing.T) {
	for _, tc := range []struct {
		versions, onConflict string
		allowed              []string
		want, err            string
	}{
		{allowed: []string{"none", "put", "post"}, want: "none"},
		{versions: "put", onConflict: "overwrite", allowed: []string{"none", "put", "post"}, want: "put"},
		{versions: "post", onConflict: "overwrite", allowed: []string{"none", "put", "post"}, err: "on_conflict is for"},
		{versions: "append", allowed: []string{"none", "put", "post"}, err: "takes versions: none, put, post"},
		{versions: "append", allowed: []string{"refuse", "append"}, want: "append"},
		{want: ""},
		{versions: "put", err: "its own way"},
		{onConflict: "fail", err: "on_conflict is for"},
	} {
		c := targets.Config{Name: "t", Kind: "k", Versions: tc.versions, OnConflict: tc.onConflict}
		got, err := c.VersionsFor(tc.allowed...)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want %q", tc, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%+v: %q, %v; want %q", tc, got, err, tc.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := targets.Backoff{Initial: time.Second, Max: 10 * time.Second}
	one := func() float64 { return 0.999999 }
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		if got := b.Delay(failures, one); got > want || got < want*99/100 {
			t.Errorf("after %d failures: ceiling %s, want %s", failures, got, want)
		}
	}
	if got := b.Delay(3, func() float64 { return 0 }); got != 0 {
		t.Errorf("full jitter allows zero, got %s", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		"Mon, 23 Nov 2026 10:00:30 GMT": 30 * time.Second,
		"Mon, 23 Nov 2026 09:00:00 GMT": 0,
		// beyond any sane wait: the longest one, never an overflow
		"9223372037":           targets.RetryAfterMax,
		"99999999999999999999": targets.RetryAfterMax,
	}
	for in, want := range tests {
		if got := targets.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("Mon, 23 Nov 2026 10:00:30 GMT")
	f.Add("9223372037") // seconds whose nanoseconds overflow int64
	f.Add("9000000000")
	f.Fuzz(func(t *testing.T, v string) {
		if d := targets.ParseRetryAfter(v, time.Now()); d < 0 {
			t.Fatalf("negative wait %s for %q", d, v)
		}
	})
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{408, "", false, 0},
		{429, "7", false, 7 * time.Second},
		{500, "", false, 0},
		{503, "2", false, 2 * time.Second},
		{400, "", true, 0},
		{401, "", true, 0},
		{404, "", true, 0},
		{422, "", true, 0},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("detail"))}
		if tc.retryAfter != "" {
			resp.Header.Set("Retry-After", tc.retryAfter)
		}
		err := targets.StatusError("upload", resp)
		te := targets.Classify(err)
		if te.Permanent != tc.permanent || te.RetryAfter != tc.wait || te.StatusCode != tc.status || !strings.Contains(err.Error(), "detail") {
			t.Errorf("%d: permanent=%v wait=%s status=%d err=%v", tc.status, te.Permanent, te.RetryAfter, te.StatusCode, err)
		}
	}
	wrapped := fmt.Errorf("step 2: %w", targets.Permanent(errors.New("no")))
	if !targets.IsPermanent(wrapped) {
		t.Error("Permanent must survive wrapping")
	}
	if targets.IsPermanent(errors.New("plain")) {
		t.Error("a plain error is retryable")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := targets.TransportError(ctx, "send", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled context must stay visible: %v", err)
	}
}

func TestMultipartBody(t *testing.T) {
	data := bytes.Repeat([]byte("ferry"), 1000)
	// RFC 7578 §4.2: UTF-8 in filename="...", '"' CR LF percent-encoded,
	// never filename*.
	for name, want := range map[string]string{"plain.pdf": "plain.pdf", "Facture été 2026.pdf": "Facture été 2026.pdf",
		`quo"te.txt`: "quo%22te.txt", "line\r\nbreak": "line%0D%0Abreak"} {
		body, n, ctype, err := targets.MultipartBody([]targets.Field{{"parentId", "p1"}}, "fileData", name, "", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(body)
		if int64(len(raw)) != n {
			t.Fatalf("declared length %d, body is %d bytes", n, len(raw))
		}
		if !bytes.Contains(raw, []byte(`; filename="`+want+`"`)) || bytes.Contains(raw, []byte("filename*")) {
			t.Errorf("%q: part header is not RFC 7578's: %q", name, raw[:min(len(raw), 300)])
		}
		_, params, _ := mime.ParseMediaType(ctype)
		r := multipart.NewReader(bytes.NewReader(raw), params["boundary"])
		f, _ := r.NextPart()
		v, _ := io.ReadAll(f)
		if f.FormName() != "parentId" || string(v) != "p1" {
			t.Errorf("field %q=%q", f.FormName(), v)
		}
		p, err := r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if p.FormName() != "fileData" || p.FileName() != want || !bytes.Equal(got, data) {
			t.Errorf("file part %q %q: %d bytes", p.FormName(), p.FileName(), len(got))
		}
		if _, err := r.NextPart(); err != io.EOF {
			t.Errorf("after the file: %v, want EOF", err)
		}
	}
}

func TestDeliverySaveMerges(t *testing.T) {
	var saved []targets.Checkpoint
	d := targets.NewDelivery(nil, func(_ context.Context, cp targets.Checkpoint) error { saved = append(saved, cp); return nil })
	_ = d.Save(context.Background(), targets.Checkpoint{"a": "1"})
	_ = d.Save(context.Background(), targets.Checkpoint{"b": "2"})
	_ = d.Save(context.Background(), targets.Checkpoint{"a": ""})
	if len(saved) != 3 || d.Checkpoint["b"] != "2" || d.Checkpoint["a"] != "" || len(d.Checkpoint) != 1 {
		t.Errorf("checkpoint %v, saves %v", d.Checkpoint, saved)
	}
	failing := targets.NewDelivery(nil, func(context.Context, targets.Checkpoint) error { return errors.New("db down") })
	if err := failing.Save(context.Background(), targets.Checkpoint{"a": "1"}); err == nil || len(failing.Checkpoint) != 0 {
		t.Errorf("a failed save must not advance the checkpoint: %v %v", err, failing.Checkpoint)
	}
}

// FuzzParseFile reads any targets file with a lookup that knows some
// variables: it never panics, and what it accepts is valid, named once,
// and has every ${VAR} replaced.
func FuzzParseFile(f *testing.F) {
	known := map[string]string{"URL": "http://127.0.0.1:1/", "TOKEN": "s3cr3t: with yaml's {special} chars", "A": "x", "B": ""}
	f.Fuzz(func(t *testing.T, file string) {
		cfgs, err := targets.ParseFile(strings.NewReader(file), func(k string) (string, bool) {
			v, ok := known[k]
			return v, ok
		})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range cfgs {
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted an invalid entry: %v", err)
			}
			if seen[c.Name] {
				t.Fatalf("accepted %q twice", c.Name)
			}
			seen[c.Name] = true
		}
	})
}

// FuzzContentDisposition: the headers ferry builds for a filename parse
// back (mime.ParseMediaType, as a receiver would) to that filename: exactly
// for ContentDisposition, and with only '"', CR and LF percent-encoded for
// RFC 7578 form-data.
func FuzzContentDisposition(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		if !utf8.ValidString(name) || name == "" {
			return
		}
		h := targets.ContentDisposition("attachment", name)
		d, params, err := mime.ParseMediaType(h)
		if err != nil || d != "attachment" || params["filename"] != name {
			t.Fatalf("ContentDisposition(%q) = %q parses to %q %q (%v)", name, h, d, params["filename"], err)
		}
		h = targets.FormDataDisposition("file", name)
		d, params, err = mime.ParseMediaType(h)
		want := strings.NewReplacer(`"`, "%22", "\r", "%0D", "\n", "%0A").Replace(name)
		if err != nil || d != "form-data" || params["name"] != "file" || params["filename"] != want {
			t.Fatalf("FormDataDisposition(%q) = %q parses to %q %q (%v)", name, h, d, params["filename"], err)
		}
	})
}
