package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ferry-relay/ferry/api"
)

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

// contract returns a router over the API's OpenAPI document.
func contract(t *testing.T) routers.Router {
	t.Helper()
	contractOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err != nil {
			contractErr = err
			return
		}
		doc.Servers = nil // match any host: the test server's port is random
		contractRouter, contractErr = legacy.NewRouter(doc)
	})
	if contractErr != nil {
		t.Fatalf("OpenAPI document: %v", contractErr)
	}
	return contractRouter
}

// checkContract wraps the API so that every answer to a documented /v1
// route is validated against the OpenAPI document, its status code
// included: every e2e test that talks to the API checks the contract.
func checkContract(t *testing.T, h http.Handler) http.Handler {
	router := contract(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &teeRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		if !strings.HasPrefix(r.URL.Path, "/v1/") || r.Context().Err() != nil {
			return
		}
		route, params, err := router.FindRoute(r)
		if err != nil {
			return // an unknown route: the 404 is the router's, checked by the api package's route test
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
			Status:  rec.code,
			Header:  rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s %s answered %d, which does not match api/openapi.json: %v\nbody: %.2000s",
				r.Method, r.URL.Path, rec.code, err, rec.body.String())
		}
	})
}

// teeRecorder passes an answer through and keeps a copy.
type teeRecorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (r *teeRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *teeRecorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *teeRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *teeRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TestOpenAPIServedDocument checks that the served document is the
// embedded one and passes OpenAPI 3.1 validation.
func TestOpenAPIServedDocument(t *testing.T) {
	p := newPipeline(t, `targets:
  - {name: ok, kind: http, url: "http://127.0.0.1:1/"}
`, pipelineOptions{})
	resp, err := http.Get(p.api.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(b, api.OpenAPI) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes", resp.StatusCode, len(b))
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("served document: %v (openapi %s)", err, doc.OpenAPI)
	}
}
