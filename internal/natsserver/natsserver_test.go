package natsserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/nats-io/nats.go"
)

// TestEmbeddedNeedsItsToken: the embedded server refuses a client without
// its token, keeps the token (0600) across restarts, and never shows it in
// Addr.
func TestEmbeddedNeedsItsToken(t *testing.T) {
	dir := t.TempDir()
	e, err := natsserver.Start(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	token, err := natsserver.Token(dir)
	if err != nil || len(token) < 32 {
		t.Fatalf("token %q: %v", token, err)
	}
	if strings.Contains(e.Addr(), token) || !strings.Contains(e.URL(), token) {
		t.Fatalf("Addr %q or URL %q wrong about the token", e.Addr(), e.URL())
	}
	if nc, err := nats.Connect(e.Addr(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without the token")
	}
	if nc, err := nats.Connect(strings.Replace(e.URL(), token, strings.Repeat("0", len(token)), 1), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong token")
	}
	nc, err := nats.Connect(e.URL())
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
	fi, err := os.Stat(filepath.Join(dir, "ferry-nats-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	e.Shutdown()
	e2, err := natsserver.Start(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Shutdown()
	if again, _ := natsserver.Token(dir); again != token || !strings.Contains(e2.URL(), token) {
		t.Fatal("a restarted server has another token: its clients would be refused")
	}
}
