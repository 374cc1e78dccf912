package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The limits: STYLE.md asks for files under ~500 lines and functions under
// ~70.
const (
	defaultMaxFileLines = 500
	defaultMaxFuncLines = 70
)

// excludedDirs are trees (slash-separated, relative to the module root)
// that are not product code:
//   - cmd/ferry-bench and cmd/ferry-chaos are measuring harnesses run by
//     make bench and make chaos, never shipped;
//   - internal/testenv and targets/targetstest are imported only by tests;
//   - e2e holds only tests.
//
// internal/fakes is measured: the fakes ship in bin/ferry (`ferry fake`)
// and users run them as stand-ins for the document systems.
var excludedDirs = []string{
	"cmd/ferry-bench",
	"cmd/ferry-chaos",
	"e2e",
	"internal/testenv",
	"targets/targetstest",
}

type config struct {
	root         string
	debtFile     string
	maxFileLines int
	maxFuncLines int
}

// measure is one file's or one function's size.
type measure struct {
	kind  string // "file" or "func"
	path  string // slash-separated, relative to the root
	name  string // the function ("Name" or "Recv.Name"); empty for a file
	lines int
}

func (m measure) key() debtKey { return debtKey{kind: m.kind, path: m.path, name: m.name} }

func (m measure) String() string {
	if m.kind == "file" {
		return fmt.Sprintf("file %s: %d lines", m.path, m.lines)
	}
	return fmt.Sprintf("func %s %s: %d lines", m.path, m.name, m.lines)
}

// check walks the tree and returns the problems: offenders not in the debt
// list, listed offenders that grew, and debt entries no longer needed.
func check(cfg config) ([]string, error) {
	debtPath := cfg.debtFile
	if !filepath.IsAbs(debtPath) {
		debtPath = filepath.Join(cfg.root, debtPath)
	}
	debt, err := readDebt(debtPath)
	if err != nil {
		return nil, err
	}
	offenders, err := collect(cfg)
	if err != nil {
		return nil, err
	}
	var problems []string
	seen := map[debtKey]bool{}
	for _, m := range offenders {
		limit, listed := debt[m.key()]
		seen[m.key()] = true
		switch {
		case !listed:
			problems = append(problems, fmt.Sprintf("%s, over the limit of %d", m, cfg.limit(m.kind)))
		case m.lines > limit:
			problems = append(problems, fmt.Sprintf("%s, grew past its debt entry of %d", m, limit))
		}
	}
	for _, k := range sortedKeys(debt) {
		if !seen[k] {
			problems = append(problems, fmt.Sprintf("%s: within the limit now (or gone); remove its line from %s", k, cfg.debtFile))
		}
	}
	return problems, nil
}

func (cfg config) limit(kind string) int {
	if kind == "file" {
		return cfg.maxFileLines
	}
	return cfg.maxFuncLines
}

// collect returns every product file and function over its limit.
func collect(cfg config) ([]measure, error) {
	var out []measure
	err := filepath.WalkDir(cfg.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(cfg.root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if skipDir(rel, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		ms, err := measureFile(path, rel)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.lines > cfg.limit(m.kind) {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

func skipDir(rel, name string) bool {
	if rel == "." {
		return false
	}
	if strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules" || name == "bin" {
		return true
	}
	return slices.Contains(excludedDirs, rel)
}

// measureFile returns the file's size and each top-level function's, or
// nothing for a generated file.
func measureFile(path, rel string) ([]measure, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rel, err)
	}
	if ast.IsGenerated(f) {
		return nil, nil
	}
	ms := []measure{{kind: "file", path: rel, lines: lineCount(src)}}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		lines := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
		ms = append(ms, measure{kind: "func", path: rel, name: funcName(fn), lines: lines})
	}
	return ms, nil
}

// lineCount counts lines as an editor shows them: a last line without a
// newline still counts.
func lineCount(src []byte) int {
	n := bytes.Count(src, []byte("\n"))
	if len(src) > 0 && src[len(src)-1] != '\n' {
		n++
	}
	return n
}

// funcName is "Name" for a function and "Recv.Name" for a method, the
// receiver's type without its pointer or type parameters.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
