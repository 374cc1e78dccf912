package apikeys_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/testenv"
)

func TestCreateListRevoke(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	s := apikeys.NewStore(pool)

	key, info, err := s.CreateKey(ctx, apikeys.Spec{Name: "ci", Tenant: "team-a", Role: apikeys.RoleUploader, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if info.Tenant != "team-a" || info.Role != apikeys.RoleUploader || info.ExpiresAt == nil || key[:len(info.Prefix)] != info.Prefix {
		t.Fatalf("created %+v", info)
	}
	id, err := s.Check(ctx, key)
	if err != nil || id.Tenant != "team-a" || id.Role != apikeys.RoleUploader || id.Name != "ci" {
		t.Fatalf("check: %+v %v", id, err)
	}
	if _, _, err := s.CreateKey(ctx, apikeys.Spec{Name: "ci"}); !errors.Is(err, apikeys.ErrExists) {
		t.Fatalf("second key named ci: %v, want ErrExists", err)
	}
	for _, sp := range []apikeys.Spec{{Name: ""}, {Name: "x", Tenant: "Bad Tenant"}, {Name: "x", Role: "root"}, {Name: "fy_x"}, {Name: "a\x1bb"}} {
		if _, _, err := s.CreateKey(ctx, sp); !errors.Is(err, apikeys.ErrSpec) {
			t.Errorf("create %+v: %v, want ErrSpec", sp, err)
		}
	}
	defaults, dinfo, err := s.CreateKey(ctx, apikeys.Spec{Name: "plain"})
	if err != nil || dinfo.Tenant != apikeys.TenantDefault || dinfo.Role != apikeys.RoleDefault || dinfo.ExpiresAt != nil {
		t.Fatalf("defaults: %+v %v", dinfo, err)
	}

	// Revoke by prefix, then by name; unknown and revoked refs are not found.
	if _, err := s.Revoke(ctx, info.Prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, key); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := s.Revoke(ctx, "ci"); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("revoking a revoked key: %v", err)
	}
	if _, err := s.Revoke(ctx, defaults); err != nil {
		t.Fatalf("revoke by the whole key: %v", err)
	}
	// The name is free again once revoked.
	if _, _, err := s.CreateKey(ctx, apikeys.Spec{Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d keys, %v", len(list), err)
	}
	if list[0].RevokedAt == nil || list[0].LastUsedAt == nil || list[2].RevokedAt != nil {
		t.Errorf("list: %+v", list)
	}
}

func TestExpiredKeyIsInvalid(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	s := apikeys.NewStore(pool)
	key, info, err := s.CreateKey(ctx, apikeys.Spec{Name: "brief", TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitForDBTime(t, pool, *info.ExpiresAt)
	if _, err := s.Check(ctx, key); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("expired key: %v", err)
	}
}

type countingChecker struct {
	calls int
	id    apikeys.Identity
	err   error
}

func (c *countingChecker) Check(context.Context, string) (apikeys.Identity, error) {
	c.calls++
	return c.id, c.err
}

func TestCacheNeverOutlivesTTLOrExpiry(t *testing.T) {
	now := time.Now()
	exp := now.Add(50 * time.Millisecond)
	next := &countingChecker{id: apikeys.Identity{ID: 1, ExpiresAt: &exp}}
	c := apikeys.NewCache(next, time.Hour)
	c.SetClock(func() time.Time { return now })
	for range 3 {
		if _, err := c.Check(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
	}
	if next.calls != 1 {
		t.Fatalf("%d lookups, want 1 while cached", next.calls)
	}
	now = now.Add(60 * time.Millisecond) // past the key's expiry, within the cache's hour
	next.err = apikeys.ErrInvalid
	if _, err := c.Check(context.Background(), "k"); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("past its expiry the key came from the cache: %v", err)
	}
}

func TestRoles(t *testing.T) {
	for _, c := range []struct {
		role apikeys.Role
		can  []apikeys.Permission
		not  []apikeys.Permission
	}{
		{apikeys.RoleAdmin, []apikeys.Permission{apikeys.PermRead, apikeys.PermUpload, apikeys.PermChange, apikeys.PermProbe, apikeys.PermDelete, apikeys.PermBulk, apikeys.PermAdmin}, nil},
		{apikeys.RoleOperator, []apikeys.Permission{apikeys.PermRead, apikeys.PermUpload, apikeys.PermChange, apikeys.PermProbe, apikeys.PermDelete, apikeys.PermBulk}, []apikeys.Permission{apikeys.PermAdmin}},
		{apikeys.RoleUploader, []apikeys.Permission{apikeys.PermRead, apikeys.PermUpload, apikeys.PermChange}, []apikeys.Permission{apikeys.PermProbe, apikeys.PermDelete, apikeys.PermBulk, apikeys.PermAdmin}},
		{apikeys.Role("nobody"), nil, []apikeys.Permission{apikeys.PermRead}},
	} {
		for _, p := range c.can {
			if !c.role.Can(p) {
				t.Errorf("%s cannot %s", c.role, p)
			}
		}
		for _, p := range c.not {
			if c.role.Can(p) {
				t.Errorf("%s can %s", c.role, p)
			}
		}
	}
}
