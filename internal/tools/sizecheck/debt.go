package main

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// debtKey names one listed offender.
type debtKey struct {
	kind, path, name string
}

func (k debtKey) String() string {
	if k.kind == "file" {
		return "file " + k.path
	}
	return "func " + k.path + " " + k.name
}

// readDebt parses the debt file. Each line is one of
//
//	file <path> <lines>
//	func <path> <Name|Recv.Name> <lines>
//
// with <lines> the most the offender may have; # starts a comment.
func readDebt(path string) (map[debtKey]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the debt list: %w", err)
	}
	defer f.Close()
	debt := map[debtKey]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		k, lines, err := parseDebtLine(fields)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if _, dup := debt[k]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, n, k)
		}
		debt[k] = lines
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the debt list: %w", err)
	}
	return debt, nil
}

func parseDebtLine(fields []string) (debtKey, int, error) {
	var k debtKey
	switch {
	case fields[0] == "file" && len(fields) == 3:
		k = debtKey{kind: "file", path: fields[1]}
	case fields[0] == "func" && len(fields) == 4:
		k = debtKey{kind: "func", path: fields[1], name: fields[2]}
	default:
		return k, 0, fmt.Errorf("want `file <path> <lines>` or `func <path> <name> <lines>`, got %q", strings.Join(fields, " "))
	}
	lines, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil || lines <= 0 {
		return k, 0, fmt.Errorf("%s: the line count %q is not a positive number", k, fields[len(fields)-1])
	}
	return k, lines, nil
}

func sortedKeys(debt map[debtKey]int) []debtKey {
	keys := make([]debtKey, 0, len(debt))
	for k := range debt {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b debtKey) int {
		return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	return keys
}
