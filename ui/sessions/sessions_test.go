package sessions_test

import (
	"errors"
	"testing"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/ui/sessions"
)

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	keys := apikeys.NewStore(pool)
	_, info, err := keys.CreateKey(ctx, apikeys.Spec{Name: "ops", Role: apikeys.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	// Two stores over one schema: two processes.
	a, b := sessions.NewStore(pool, sessions.Config{}), sessions.NewStore(pool, sessions.Config{})
	tok, err := a.Create(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	se, err := b.Get(ctx, tok)
	if err != nil || se.Key.ID != info.ID || se.Key.Name != "ops" || se.Key.Role != apikeys.RoleAdmin || se.CSRF == "" {
		t.Fatalf("the other process reads %+v, %v", se, err)
	}
	if sa, _ := a.Get(ctx, tok); sa.CSRF != se.CSRF {
		t.Error("two processes derive different CSRF tokens")
	}
	// Only a hash of the token is stored.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM dashboard_sessions WHERE token_hash = $1::text::bytea`, tok).Scan(&n); err != nil || n != 0 {
		t.Errorf("the token is stored in clear: %d %v", n, err)
	}
	if err := a.Delete(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, tok); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("after logout on a, b reads: %v", err)
	}

	// Expired sessions are not read, and Expire removes them.
	tok, _ = a.Create(ctx, info.ID)
	if _, err := pool.Exec(ctx, `UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, tok); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("an expired session reads: %v", err)
	}
	if n, err := b.Expire(ctx); err != nil || n != 1 {
		t.Errorf("expire: %d %v", n, err)
	}

	// Revoking the key ends its sessions at once, and it can start none.
	tok, _ = a.Create(ctx, info.ID)
	if _, err := keys.Revoke(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, tok); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("a session of a revoked key reads: %v", err)
	}
	if _, err := a.Create(ctx, info.ID); !errors.Is(err, apikeys.ErrInvalid) {
		t.Errorf("a revoked key starts a session: %v", err)
	}
}

// TestSessionsBoundedPerKey: many logins with one key drop that key's
// oldest sessions, never another key's (issue 20 item 7).
func TestSessionsBoundedPerKey(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	keys := apikeys.NewStore(pool)
	var ids [2]int64
	for i, name := range []string{"admin", "noisy"} {
		_, info, err := keys.CreateKey(ctx, apikeys.Spec{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = info.ID
	}
	s := sessions.NewStore(pool, sessions.Config{PerKey: 5})
	admin, err := s.Create(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var noisy []string
	for i := range 40 {
		tok, err := s.Create(ctx, ids[1])
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		noisy = append(noisy, tok)
	}
	if se, err := s.Get(ctx, admin); err != nil || se.Key.ID != ids[0] {
		t.Fatalf("40 logins of another key evicted the admin's session: %v", err)
	}
	for i, tok := range noisy {
		_, err := s.Get(ctx, tok)
		if live := err == nil; live != (i >= len(noisy)-5) {
			t.Errorf("noisy session %d: live %v (%v)", i, live, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM dashboard_sessions WHERE api_key_id = $1`, ids[1]).Scan(&n); err != nil || n != 5 {
		t.Errorf("the noisy key keeps %d sessions (%v), want 5", n, err)
	}
}
