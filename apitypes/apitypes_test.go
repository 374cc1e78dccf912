package apitypes_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/apitypes"
)

// TestJobStoreHasNoJSONTags keeps the wire apart from the store: the job
// store's types carry no JSON tags, so what the API writes is decided here,
// in apitypes, and nowhere else.
func TestJobStoreHasNoJSONTags(t *testing.T) {
	files, err := filepath.Glob("../jobs/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no job store files: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok || field.Tag == nil {
				return true
			}
			if _, ok := reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Lookup("json"); ok {
				t.Errorf("%s: a JSON tag in the job store; wire types belong in apitypes", fset.Position(field.Pos()))
			}
			return true
		})
	}
}

// TestClientNeedsNoStore checks that the client and the wire types build
// without the job store or the database driver.
func TestClientNeedsNoStore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ferry-relay/ferry/client/...", "github.com/ferry-relay/ferry/apitypes").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/jackc/") || dep == "github.com/ferry-relay/ferry/jobs" {
			t.Errorf("the client depends on %s", dep)
		}
	}
}

// TestStatusSupersededIsFinal: a version overtaken by a newer one is a
// final status, listed with the others (issue 21).
func TestStatusSupersededIsFinal(t *testing.T) {
	if !apitypes.StatusSuperseded.Final() || !apitypes.StatusSuperseded.Valid() || !slices.Contains(apitypes.Statuses, apitypes.StatusSuperseded) {
		t.Error("SUPERSEDED is not a final status in apitypes.Statuses")
	}
}
