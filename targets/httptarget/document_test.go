package httptarget_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

// docSink adapts the sink's document paths to the documents suite.
type docSink struct {
	sinkFake
	base string
}

func (f docSink) DocumentVersions() map[string][]string {
	out := map[string][]string{}
	for p, versions := range f.Resources() {
		for _, v := range versions {
			out[f.base+p] = append(out[f.base+p], v.SHA256)
		}
	}
	return out
}
func (f docSink) Steps() []string        { return []string{sink.StepPut} }
func (f docSink) VersionSteps() []string { return []string{sink.StepPut} }
func (f docSink) DeleteSteps() []string  { return []string{sink.StepDelete} }

// putTarget starts a sink and an http target with versions: put on it.
func putTarget(t *testing.T, opts sink.Options, onConflict string) (*httptarget.Client, docSink) {
	t.Helper()
	opts.Token = "sink-token"
	s := sink.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := httptarget.NewClient(httptarget.Settings{
		URL: srv.URL + "/docs/{document}", Versions: targets.VersionsPut, OnConflict: onConflict,
		Headers: map[string]string{"Authorization": "Bearer sink-token"},
	}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, docSink{sinkFake{s}, srv.URL}
}

func TestVersionsPut(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sink.Options
	}{
		// The receiver answers a repeated PUT by its Idempotency-Key.
		{name: "idempotency-key"},
		// It does not: a repeat meets a 412 and the connector asks HEAD
		// for the Repr-Digest.
		{name: "repr-digest", opts: sink.Options{IgnoreIdempotencyKey: true}},
		// Nor gives a digest: the connector hashes a GET.
		{name: "get-and-hash", opts: sink.Options{IgnoreIdempotencyKey: true, NoReprDigest: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targetstest.RunVersions(t, targetstest.VersionHarness{New: func(t *testing.T) (targets.Deliverer, targetstest.VersionFake, map[string]string) {
				c, f := putTarget(t, tc.opts, "")
				return c, f, nil
			}})
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func deliver(t *testing.T, c targets.Deliverer, doc *targets.Document, data string) (targets.Result, error) {
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte(data)}, nil)
	d.Document = doc
	return c.Deliver(ctx(t), d)
}

// A version whose document changed at the target behind ferry's back
// fails with a conflict, unless on_conflict: overwrite.
func TestVersionsPutConflict(t *testing.T) {
	for _, onConflict := range []string{"", targets.OnConflictOverwrite} {
		t.Run("on_conflict="+onConflict, func(t *testing.T) {
			c, f := putTarget(t, sink.Options{IgnoreIdempotencyKey: true}, onConflict)
			res, err := deliver(t, c, &targets.Document{ID: "d", Key: "k/1.txt", Version: 1}, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(res.Remote[httptarget.RemoteURL], "/docs/k%2F1.txt") || res.Remote[httptarget.RemoteETag] == "" {
				t.Fatalf("remote %v: want the key's URL, path-escaped, and an ETag", res.Remote)
			}
			f.SetDocument("/docs/k%2F1.txt", []byte("changed by someone else"))
			_, err = deliver(t, c, &targets.Document{ID: "d", Key: "k/1.txt", Version: 2, Remote: res.Remote}, "v2")
			got := f.Resources()["/docs/k%2F1.txt"]
			last := got[len(got)-1].SHA256
			if onConflict == "" {
				if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "conflict: target changed since version 1") {
					t.Fatalf("want a permanent conflict, got %v", err)
				}
				if len(got) != 2 {
					t.Fatalf("the sink holds %d versions, want 2 (v1 and the other writer's)", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("on_conflict: overwrite: %v", err)
			}
			if len(got) != 3 || last != targetstest.NewDelivery(targetstest.File{Data: []byte("v2")}, nil).SHA256 {
				t.Fatalf("the sink holds %d versions, the last %s: want 3, the last v2", len(got), last)
			}
		})
	}
}

// A first version where a document ferry did not put exists fails with a
// conflict, and a delete after a change behind ferry's back too.
func TestVersionsPutFirstConflictAndDelete(t *testing.T) {
	c, f := putTarget(t, sink.Options{}, "")
	f.SetDocument("/docs/taken", []byte("someone's"))
	if _, err := deliver(t, c, &targets.Document{ID: "d", Key: "taken", Version: 1}, "mine"); !targets.IsPermanent(err) || !strings.Contains(err.Error(), "did not put") {
		t.Fatalf("want a permanent conflict, got %v", err)
	}
	res, err := deliver(t, c, &targets.Document{ID: "e", Key: "mine", Version: 1}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	f.SetDocument("/docs/mine", []byte("changed"))
	_, err = deliver(t, c, &targets.Document{ID: "e", Key: "mine", Version: 2, Delete: true, Remote: res.Remote}, "")
	if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("delete after a change: want a permanent conflict, got %v", err)
	}
	if len(f.Resources()["/docs/mine"]) != 2 {
		t.Fatal("the conflicting delete removed the document")
	}
}

// versions: post sends every version to the url with the document's key
// and version number; versions: none delivers as without a document.
func TestVersionsPostAndNone(t *testing.T) {
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Clone())
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	post, err := httptarget.NewClient(httptarget.Settings{URL: srv.URL + "/in", Versions: targets.VersionsPost}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if v := post.Versions(); !v.Update || v.Delete {
		t.Errorf("post: %+v, want Update without Delete", v)
	}
	if _, err := deliver(t, post, &targets.Document{ID: "d", Key: "dir/é.txt", Version: 7, Remote: map[string]string{"id": "x"}}, "v7"); err != nil {
		t.Fatal(err)
	}
	none, err := httptarget.NewClient(httptarget.Settings{URL: srv.URL + "/in"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if v := none.Versions(); !v.Append || v.Update || v.Delete {
		t.Errorf("none: %+v, want Append only", v)
	}
	if _, err := deliver(t, none, &targets.Document{ID: "d", Key: "k", Version: 2}, "v2"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	if got[0].Get("X-Ferry-Document") != "dir%2F%C3%A9.txt" || got[0].Get("X-Ferry-Version") != "7" {
		t.Errorf("post headers: document %q version %q", got[0].Get("X-Ferry-Document"), got[0].Get("X-Ferry-Version"))
	}
	if got[1].Get("X-Ferry-Document") != "" || got[1].Get("If-Match") != "" {
		t.Errorf("versions: none sent document headers: %v", got[1])
	}
}

// With versions: put, a job without a document goes to its own URL (the
// job id), created once.
func TestVersionsPutWithoutDocument(t *testing.T) {
	c, f := putTarget(t, sink.Options{IgnoreIdempotencyKey: true}, "")
	f.LoseAnswer(sink.StepPut)
	d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("plain")}, nil)
	var res targets.Result
	var err error
	for range 3 {
		if res, err = c.Deliver(ctx(t), d); err == nil {
			break
		}
	}
	if err != nil || res.Remote != nil {
		t.Fatalf("result %+v, %v: want success and no Remote", res, err)
	}
	if got := f.Resources()["/docs/"+d.JobID]; len(got) != 1 {
		t.Fatalf("the job's URL holds %d versions, want 1", len(got))
	}
}

func TestVersionsSettings(t *testing.T) {
	for _, s := range []httptarget.Settings{
		{URL: "http://x/docs", Versions: targets.VersionsPut},
		{URL: "http://x/{document}", Versions: targets.VersionsPut, Method: "POST"},
		{URL: "http://x/{document}"},
		{URL: "http://x/{document}", Versions: targets.VersionsPost},
		{URL: "http://x/", Versions: targets.VersionsPost, OnConflict: targets.OnConflictOverwrite},
		{URL: "http://x/{document}", Versions: targets.VersionsPut, OnConflict: "merge"},
		{URL: "http://x/", Versions: "append"},
		{URL: "http://x/{document}", Versions: targets.VersionsPut, ProbeURL: "http://x/p/{job_id}"},
	} {
		if _, err := httptarget.NewClient(s, http.DefaultClient); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	cfgs, err := targets.ParseFile(strings.NewReader("targets:\n  - {name: a, kind: http, url: 'http://x/{document}', versions: put, on_conflict: overwrite}\n  - {name: b, kind: http, url: 'http://x/', versions: append}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httptarget.New(cfgs[0]); err != nil {
		t.Errorf("versions: put: %v", err)
	}
	if _, err := httptarget.New(cfgs[1]); err == nil || !strings.Contains(err.Error(), "takes versions") {
		t.Errorf("versions: append on http: %v", err)
	}
}

// A 412 to a version's PUT is checked against what the target holds,
// with a GET when HEAD is not allowed: the same bytes mean an earlier
// attempt's PUT landed (success, with the ETag), other bytes a conflict.
func TestVersionsPutConflictCheckedByGet(t *testing.T) {
	holds := "v2"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			w.WriteHeader(http.StatusPreconditionFailed)
		case http.MethodHead:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case http.MethodGet:
			w.Header().Set("ETag", `"e2"`)
			_, _ = w.Write([]byte(holds))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := httptarget.NewClient(httptarget.Settings{URL: srv.URL + "/d/{document}", Versions: targets.VersionsPut}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	remote := map[string]string{httptarget.RemoteURL: srv.URL + "/d/k", httptarget.RemoteETag: `"e1"`}
	res, err := deliver(t, c, &targets.Document{ID: "d", Key: "k", Version: 2, Remote: remote}, "v2")
	if err != nil || res.Remote[httptarget.RemoteETag] != `"e2"` {
		t.Fatalf("the target holds this version: %+v, %v; want success with its ETag", res, err)
	}
	holds = "someone else's"
	if _, err := deliver(t, c, &targets.Document{ID: "d", Key: "k", Version: 2, Remote: remote}, "v2"); !targets.IsPermanent(err) || !strings.Contains(err.Error(), "since version 1") {
		t.Fatalf("the target holds other bytes: want a permanent conflict, got %v", err)
	}
}
