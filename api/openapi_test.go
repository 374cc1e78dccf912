package api

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ferry-relay/ferry/apitypes"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIValid checks the document against OpenAPI 3.1, its examples
// included.
func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3.1: %v", err)
	}
}

// registeredRoutes walks the API's router as written: every pattern given
// to Handle or HandleFunc in the package's non-test files. (A ServeMux
// cannot list its patterns, so the walk reads the source.)
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: route pattern is not a literal; the OpenAPI route test cannot see it", fset.Position(call.Pos()))
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			routes = append(routes, p)
			return true
		})
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d routes: the walk is broken", len(routes))
	}
	return routes
}

// TestOpenAPICoversRoutes fails when a /v1 route the server registers is
// missing from the document, or the document describes one it does not.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	served := map[string]bool{}
	for _, p := range registeredRoutes(t) {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		key := method + " " + path
		served[key] = true
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s is not in api/openapi.json", key)
		}
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(documented)
	for _, d := range documented {
		if !served[d] {
			t.Errorf("api/openapi.json documents %s, which the server does not serve", d)
		}
	}
}

// TestOpenAPISchemasMatchWireTypes fails when a schema and the wire type
// it describes have different fields, so the document cannot drift from
// what the server writes.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{
		"Error": apitypes.Error{}, "Job": apitypes.Job{}, "JobList": apitypes.JobList{},
		"UploadResult": apitypes.UploadResult{}, "Attempt": apitypes.Attempt{}, "AttemptList": apitypes.AttemptList{},
		"RequeueFilter": apitypes.RequeueRequest{}, "BatchRetryRequest": apitypes.BatchRetryRequest{},
		"RequeueResult": apitypes.RequeueResult{}, "Target": apitypes.Target{}, "TargetList": apitypes.TargetList{},
		"CheckRequest": apitypes.CheckRequest{}, "CheckResult": apitypes.CheckResult{}, "Batch": apitypes.Batch{},
		"NewBatch": apitypes.Batch{}, "Count": apitypes.Count{}, "BatchSummary": apitypes.BatchSummary{},
		"BatchPage": apitypes.BatchPage{}, "ReportRow": apitypes.ReportRow{},
		"Activity": apitypes.Activity{}, "TargetActivity": apitypes.TargetActivity{},
		"FailureGroup": apitypes.FailureGroup{}, "FailureGroups": apitypes.FailureGroups{},
		"ThroughputPoint": apitypes.ThroughputPoint{}, "Throughput": apitypes.Throughput{},
		"Identity": apitypes.Identity{}, "APIKey": apitypes.APIKey{}, "APIKeyList": apitypes.APIKeyList{},
		"NewAPIKey": apitypes.NewAPIKey{}, "CreatedAPIKey": apitypes.CreatedAPIKey{},
		"AuditEntry": apitypes.AuditEntry{}, "AuditPage": apitypes.AuditPage{},
		"NewUploadSession": apitypes.NewUploadSession{}, "UploadSession": apitypes.UploadSession{},
		"SessionPart": apitypes.Part{}, "CompleteUploadSession": apitypes.CompleteUploadSession{},
		"Document": apitypes.Document{}, "DocumentVersion": apitypes.DocumentVersion{}, "DocumentList": apitypes.DocumentList{},
	} {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("no schema %s", name)
			continue
		}
		var props []string
		for p := range ref.Value.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		fields := jsonFields(reflect.TypeOf(v))
		sort.Strings(fields)
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has properties %v; apitypes.%T has JSON fields %v", name, props, v, fields)
		}
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded ones
// flattened, as encoding/json writes them.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// TestOpenAPIServed checks that the document is served without a key.
func TestOpenAPIServed(t *testing.T) {
	srv := httptest.NewServer(New(Config{}, Deps{}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK || doc["openapi"] != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d %v %v", resp.StatusCode, err, doc["openapi"])
	}
}
