package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary links no test code: before, the fakes imported the connector
// test suite and, with it, package testing.
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasSuffix(pkg, "test") && strings.HasPrefix(pkg, "github.com/ferry-relay/ferry/") {
			t.Errorf("ferry links %s", pkg)
		}
	}
}
