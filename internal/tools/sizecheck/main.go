// Command sizecheck fails when a product file is over 500 lines or a
// product function is over 70 lines (STYLE.md: files under ~500 lines,
// functions that fit on a screen). `make lint` runs it from the module root:
//
//	go run ./internal/tools/sizecheck
//
// Product code is what ships in bin/ferry and the packages a user imports.
// Not product code, so not measured: _test.go files, generated files,
// testdata, and the harness and test-support trees named in excludedDirs.
//
// Offenders that predate the check are listed, each with its current size,
// in the debt file (debt.txt beside this file). An entry lets that file or
// function stay as long as it is now, never longer; an entry that is no
// longer needed (the code shrank under the limit, or moved) fails the check
// too, so the list only shrinks.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.root, "root", ".", "module root to walk")
	flag.StringVar(&cfg.debtFile, "debt", "internal/tools/sizecheck/debt.txt", "the list of known offenders (relative to -root unless absolute)")
	flag.IntVar(&cfg.maxFileLines, "max-file-lines", defaultMaxFileLines, "lines a product file may have")
	flag.IntVar(&cfg.maxFuncLines, "max-func-lines", defaultMaxFuncLines, "lines a product function may have, from func to its closing brace")
	flag.Parse()
	os.Exit(run(cfg, os.Stdout))
}

// run checks the tree and writes one line per problem to out. It returns
// the process exit code: 0 clean, 1 problems found, 2 the check could not run.
func run(cfg config, out io.Writer) int {
	problems, err := check(cfg)
	if err != nil {
		fmt.Fprintln(out, "sizecheck:", err)
		return 2
	}
	for _, p := range problems {
		fmt.Fprintln(out, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(out, "sizecheck: %d problem(s); split the file or function along named steps (STYLE.md)\n", len(problems))
		return 1
	}
	return 0
}
