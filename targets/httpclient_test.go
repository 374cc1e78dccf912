package targets

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPClient(t *testing.T) {
	hc := HTTPClient(Config{Concurrency: 12})
	tr, ok := hc.Transport.(*tracingTransport).next.(*http.Transport)
	if !ok || tr == http.DefaultTransport || tr.MaxIdleConnsPerHost != 12 || tr.Proxy == nil {
		t.Fatalf("transport %#v: want a clone of the default with 12 idle connections per host", hc.Transport)
	}
	if hc.Timeout != 0 {
		t.Errorf("overall timeout %v: the delivery's context bounds attempts", hc.Timeout)
	}
	if got := HTTPClient(Config{Concurrency: 1}).Transport.(*tracingTransport).next.(*http.Transport).MaxIdleConnsPerHost; got != 2 {
		t.Errorf("concurrency 1: %d idle connections, want at least 2", got)
	}

	reached := false
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	defer elsewhere.Close()
	for _, code := range []int{http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL, code)
		}))
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("body"))
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := hc.Do(req)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || reached {
			t.Errorf("redirect %d: answered %d, followed %v; want the 3xx, not followed", code, resp.StatusCode, reached)
		}
		if err := StatusError("upload", resp); !IsPermanent(err) || !strings.Contains(err.Error(), "30") {
			t.Errorf("redirect %d: %v, want a permanent error naming the status", code, err)
		}
	}
}

// TestConnectorsUseHTTPClient: no connector falls back to
// http.DefaultClient (2 idle connections per host, redirects followed).
func TestConnectorsUseHTTPClient(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), "http.DefaultClient") {
			t.Errorf("%s uses http.DefaultClient: build the connector's client with targets.HTTPClient", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
