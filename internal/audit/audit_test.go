package audit_test

import (
	"testing"

	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestRecordAndList: entries come back newest first, filtered by tenant and
// action, in pages.
func TestRecordAndList(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	s := audit.NewStore(pool)
	for i, e := range []audit.Entry{
		{KeyName: "(cli)", Tenant: "a", Action: audit.ActionKeyCreate, Subject: "k1"},
		{KeyName: "ops", Tenant: "a", Action: audit.ActionJobRetry, Subject: "j1", Detail: map[string]any{"target": "t"}},
		{KeyName: "ops-b", Tenant: "b", Action: audit.ActionJobRetry, Subject: "j2"},
		{KeyName: "ops", Tenant: "a", Action: audit.ActionJobsRequeue, Detail: map[string]any{"requeued": 3}},
	} {
		if err := s.Record(ctx, e); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	all, next, err := s.List(ctx, audit.Filter{})
	if err != nil || len(all) != 4 || next != 0 || all[0].Action != audit.ActionJobsRequeue || all[3].Subject != "k1" {
		t.Fatalf("all: %+v next %d err %v", all, next, err)
	}
	if all[0].Detail["requeued"] != float64(3) || all[3].KeyID != 0 {
		t.Errorf("details: %+v", all[0])
	}
	a, _, _ := s.List(ctx, audit.Filter{Tenant: "a", Action: audit.ActionJobRetry})
	if len(a) != 1 || a[0].Subject != "j1" {
		t.Errorf("tenant a's retries: %+v", a)
	}
	page, next, _ := s.List(ctx, audit.Filter{Limit: 3})
	if len(page) != 3 || next == 0 {
		t.Fatalf("first page: %d entries, next %d", len(page), next)
	}
	rest, next, _ := s.List(ctx, audit.Filter{Limit: 3, Before: next})
	if len(rest) != 1 || next != 0 || rest[0].Subject != "k1" {
		t.Errorf("second page: %+v next %d", rest, next)
	}
}
