package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestReset: without a terminal, reset drops nothing unless --yes; with
// it, every ferry table goes (make reset).
func TestReset(t *testing.T) {
	pool, dbURL := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := apikeys.NewStore(pool).Create(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	tables := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := func(args ...string) (string, error) {
		cmd := rootCommand()
		var stderr bytes.Buffer
		cmd.SetArgs(append(args, "--database-url", dbURL))
		cmd.SetErr(&stderr)
		cmd.SetIn(strings.NewReader(""))
		err := cmd.ExecuteContext(ctx)
		return stderr.String(), err
	}
	before := tables()
	if _, err := run("reset"); err == nil || !strings.Contains(err.Error(), "--yes") || tables() != before {
		t.Fatalf("reset without a terminal or --yes: %v, %d of %d tables left", err, tables(), before)
	}
	out, err := run("reset", "--yes")
	if err != nil || tables() != 0 || !strings.Contains(out, "dropped ferry's tables") || strings.Contains(out, ":postgres@") {
		t.Fatalf("reset --yes: %v, %d tables left\n%s", err, tables(), out)
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"yes\n": true, "y\n": true, " YES \n": true, "no\n": false, "\n": false, "yess": false} {
		var w bytes.Buffer
		got, err := confirm(strings.NewReader(in), &w, "sure? ")
		if got != want || (err != nil && in != "") || w.String() != "sure? " {
			t.Errorf("confirm(%q) = %v, %v", in, got, err)
		}
	}
}
