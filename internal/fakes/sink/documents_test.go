package sink

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type call struct {
	method, path, body string
	header             map[string]string
}

func (c call) do(t *testing.T, srv *httptest.Server) *http.Response {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A document path follows RFC 9110's conditional requests: a PUT or
// DELETE whose If-Match or If-None-Match is false is 412 and changes
// nothing; HEAD gives the ETag and the RFC 9530 Repr-Digest.
func TestDocumentPreconditions(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	const p = "/docs/a%2Fb.txt"
	put := func(body string, h map[string]string) *http.Response {
		return call{method: http.MethodPut, path: p, body: body, header: h}.do(t, srv)
	}
	if r := put("one", map[string]string{"If-Match": `"nope"`}); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-Match on no document: %d, want 412", r.StatusCode)
	}
	r := put("one", map[string]string{"If-None-Match": "*"})
	etag1 := r.Header.Get("ETag")
	if r.StatusCode != http.StatusCreated || etag1 == "" {
		t.Fatalf("create: %d etag %q", r.StatusCode, etag1)
	}
	if r := put("two", map[string]string{"If-None-Match": "*"}); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-None-Match: * on a document: %d, want 412", r.StatusCode)
	}
	if r := put("two", map[string]string{"If-Match": `"v9-9"`}); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d, want 412", r.StatusCode)
	}
	r = put("two", map[string]string{"If-Match": etag1})
	etag2 := r.Header.Get("ETag")
	if r.StatusCode != http.StatusOK || etag2 == "" || etag2 == etag1 {
		t.Fatalf("replace: %d etag %q (was %q)", r.StatusCode, etag2, etag1)
	}
	head := call{method: http.MethodHead, path: p}.do(t, srv)
	sum := sha256.Sum256([]byte("two"))
	if want := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"; head.Header.Get("ETag") != etag2 || head.Header.Get("Repr-Digest") != want {
		t.Fatalf("HEAD: etag %q digest %q, want %q %q", head.Header.Get("ETag"), head.Header.Get("Repr-Digest"), etag2, want)
	}
	if got := s.Resources()[p]; len(got) != 2 || got[1].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("resources %v", got)
	}
	if r := (call{method: http.MethodDelete, path: p, header: map[string]string{"If-Match": etag1}}).do(t, srv); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("DELETE with a stale If-Match: %d, want 412", r.StatusCode)
	}
	s.LoseAnswer(StepDelete)
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+p, nil)
	req.Header.Set("If-Match", etag2)
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("LoseAnswer(delete): the DELETE was answered")
	}
	if len(s.Resources()) != 0 {
		t.Fatal("the lost DELETE did not delete")
	}
	if r := (call{method: http.MethodDelete, path: p}).do(t, srv); r.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE again: %d, want 404", r.StatusCode)
	}
	if r := (call{method: http.MethodGet, path: p}).do(t, srv); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after delete: %d, want 404", r.StatusCode)
	}
	if r := put("three", map[string]string{"If-None-Match": "*"}); r.StatusCode != http.StatusCreated {
		t.Fatalf("a new document after the delete: %d, want 201", r.StatusCode)
	}
	if got := s.Resources()[p]; len(got) != 1 {
		t.Fatalf("the new document has %d versions, want 1", len(got))
	}
}

// A repeated PUT with the same Idempotency-Key gets the first answer and
// stores nothing; a plain path is as before.
func TestDocumentIdempotencyKey(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h := map[string]string{"Idempotency-Key": `"job-1"`, "If-None-Match": "*"}
	first := call{method: http.MethodPut, path: "/docs/k", body: "x", header: h}.do(t, srv)
	again := call{method: http.MethodPut, path: "/docs/k", body: "x", header: h}.do(t, srv)
	if again.StatusCode != first.StatusCode || again.Header.Get("ETag") != first.Header.Get("ETag") || len(s.Resources()["/docs/k"]) != 1 {
		t.Fatalf("repeat: %d %q, first %d %q, versions %d", again.StatusCode, again.Header.Get("ETag"), first.StatusCode, first.Header.Get("ETag"), len(s.Resources()["/docs/k"]))
	}
	if r := (call{method: http.MethodPost, path: "/ok/x", body: "y"}).do(t, srv); r.StatusCode != http.StatusCreated || len(s.Documents()) != 2 {
		t.Fatalf("plain upload: %d, %d documents", r.StatusCode, len(s.Documents()))
	}
}
