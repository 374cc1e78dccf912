package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/jobs"
)

// recordVersion records one upload of key with content sha.
func recordVersion(t *testing.T, s *jobs.Store, tenant, key, sha string) jobs.Job {
	t.Helper()
	n := jobs.New{ID: uuid.Must(uuid.NewV7()).String(), Tenant: tenant, Target: "t", Filename: "f.pdf",
		ContentType: "application/pdf", Size: 3, SHA256: sha, ObjectKey: "objects/" + sha, MaxAttempts: 2, DocumentKey: key}
	out, created, err := s.RecordRequest(context.Background(), jobs.Request{Tenant: tenant, Jobs: []jobs.New{n}})
	if err != nil || !created || len(out) != 1 {
		t.Fatalf("record %s: %v %v", key, err, out)
	}
	return out[0]
}

func mustGet(t *testing.T, s *jobs.Store, id string) jobs.Job {
	t.Helper()
	j, err := s.Get(context.Background(), jobs.AllTenants(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestDocumentVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	v1 := recordVersion(t, s, "a", "docs/r.pdf", "s1")
	if v1.Recorded != jobs.RecordedNew || v1.Version != 1 || v1.DocumentKey != "docs/r.pdf" || v1.Op != jobs.OpPut {
		t.Fatalf("v1: %+v", v1)
	}
	// The same content while it waits: nothing new.
	again := recordVersion(t, s, "a", "docs/r.pdf", "s1")
	if again.ID != v1.ID || again.Recorded != jobs.RecordedUnchanged {
		t.Fatalf("same content: %+v", again)
	}
	// Another tenant's key is another document.
	if o := recordVersion(t, s, "b", "docs/r.pdf", "s1"); o.DocumentID == v1.DocumentID || o.Version != 1 {
		t.Fatalf("other tenant: %+v", o)
	}
	// v1 runs; v2 and v3 come: v2 is superseded by v3, v1 goes on.
	if _, err := s.Claim(ctx, v1.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := recordVersion(t, s, "a", "docs/r.pdf", "s2")
	v3 := recordVersion(t, s, "a", "docs/r.pdf", "s3")
	if v2.Version != 2 || v3.Version != 3 {
		t.Fatalf("versions %d %d", v2.Version, v3.Version)
	}
	if st := mustGet(t, s, v2.ID).Status; st != jobs.StatusSuperseded {
		t.Fatalf("v2 is %s", st)
	}
	// v3 waits for v1.
	_, err := s.Claim(ctx, v3.ID, "w/3", time.Minute)
	var ce *jobs.ClaimError
	if !errors.As(err, &ce) || !ce.Blocked {
		t.Fatalf("claim of v3 while v1 runs: %v", err)
	}
	// v1 is refused retryably (the target answered) with a newer version:
	// superseded, not retried.
	f, err := s.Finish(ctx, v1.ID, "w/1", jobs.Finish{Status: jobs.StatusRetrying, Outcome: jobs.OutcomeRetry, Error: "503", HTTPStatus: 503})
	if err != nil || f.Status != jobs.StatusSuperseded {
		t.Fatalf("v1 finish: %+v %v", f, err)
	}
	if _, err := s.Claim(ctx, v3.ID, "w/3", time.Minute); err != nil {
		t.Fatalf("claim of v3: %v", err)
	}
	if _, err := s.Finish(ctx, v3.ID, "w/3", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess,
		RemoteID: "rv3", Remote: map[string]string{"etag": "e3", "url": "u"}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDocument(ctx, jobs.InTenant("a"), v1.DocumentID)
	if err != nil || d.CurrentVersion != 3 || d.CurrentSHA256 != "s3" || d.Remote["etag"] != "e3" || d.Versions != 3 {
		t.Fatalf("document: %+v %v", d, err)
	}
	if _, err := s.GetDocument(ctx, jobs.InTenant("b"), v1.DocumentID); !errors.Is(err, jobs.ErrDocumentNotFound) {
		t.Fatalf("other tenant's document: %v", err)
	}
	vs, err := s.Versions(ctx, d.ID)
	if err != nil || len(vs) != 3 || vs[2].DeliveredAt == nil || vs[2].RemoteID != "rv3" || vs[1].Status != jobs.StatusSuperseded {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	testDeleteAndAfter(t, s, d)
}

// testDeleteAndAfter deletes d, then sends a new version of its key.
func testDeleteAndAfter(t *testing.T, s *jobs.Store, d jobs.Document) {
	ctx := context.Background()
	del, err := s.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.InTenant("a"), Tenant: "a", Target: "t", Key: d.Key, MaxAttempts: 2})
	if err != nil || del.Op != jobs.OpDelete || del.Version != 4 || del.Recorded != jobs.RecordedNew {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if again, err := s.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.InTenant("a"), DocumentID: d.ID}); err != nil || again.ID != del.ID {
		t.Fatalf("delete again: %+v %v", again, err)
	}
	if _, err := s.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.InTenant("b"), DocumentID: d.ID}); !errors.Is(err, jobs.ErrDocumentNotFound) {
		t.Fatalf("other tenant's delete: %v", err)
	}
	if _, err := s.Claim(ctx, del.ID, "w/d", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, del.ID, "w/d", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetDocument(ctx, jobs.InTenant("a"), d.ID)
	if got.State != jobs.DocumentDeleted || len(got.Remote) != 0 {
		t.Fatalf("deleted document: %+v", got)
	}
	// The same content as before the delete is a new version.
	v5 := recordVersion(t, s, "a", d.Key, "s3")
	if v5.Version != 5 || v5.Recorded != jobs.RecordedNew {
		t.Fatalf("after delete: %+v", v5)
	}
	docs, next, err := s.Documents(ctx, jobs.InTenant("a"), jobs.DocumentFilter{KeyPrefix: "docs/", Limit: 1})
	if err != nil || len(docs) != 1 || next != "" || docs[0].ID != d.ID {
		t.Fatalf("list: %+v %q %v", docs, next, err)
	}
}

func TestDocumentFailedVersionRequeued(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	v1 := recordVersion(t, s, "a", "k", "s1")
	if _, err := s.Claim(ctx, v1.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, v1.ID, "w/1", jobs.Finish{Status: jobs.StatusFailed, Outcome: jobs.OutcomeFailed, Error: "400"}); err != nil {
		t.Fatal(err)
	}
	again, err := s.SameVersion(ctx, "a", "t", "k", "s1")
	if err != nil || again.ID != v1.ID || again.Recorded != jobs.RecordedRequeued || again.Status != jobs.StatusQueued {
		t.Fatalf("same content after a failure: %+v %v", again, err)
	}
	if _, err := s.SameVersion(ctx, "a", "t", "k", "other"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("other content: %v", err)
	}
	// A newer version: the older one may no longer be retried by hand.
	_ = recordVersion(t, s, "a", "k", "s2")
	if _, err := s.Retry(ctx, jobs.AllTenants(), v1.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("retry of an old version: %v", err)
	}
}

// A delete recorded after versions that have not started supersedes them;
// it waits for one that runs.
func TestDocumentDeleteSupersedesWaitingVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	v1 := recordVersion(t, s, "a", "k", "s1")
	if _, err := s.Claim(ctx, v1.ID, "w/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	v2 := recordVersion(t, s, "a", "k", "s2")
	del, err := s.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.InTenant("a"), Tenant: "a", Target: "t", Key: "k", MaxAttempts: 2})
	if err != nil || del.Version != 3 || del.Op != jobs.OpDelete || del.Size != 0 || del.ObjectKey != "" {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if st := mustGet(t, s, v2.ID).Status; st != jobs.StatusSuperseded {
		t.Fatalf("v2 is %s", st)
	}
	if st := mustGet(t, s, v1.ID).Status; st != jobs.StatusRunning {
		t.Fatalf("v1 is %s", st)
	}
	var ce *jobs.ClaimError
	if _, err := s.Claim(ctx, del.ID, "w/d", time.Minute); !errors.As(err, &ce) || !ce.Blocked {
		t.Fatalf("claim of the delete while v1 runs: %v", err)
	}
	if _, err := s.Finish(ctx, v1.ID, "w/1", jobs.Finish{Status: jobs.StatusSuccess, Outcome: jobs.OutcomeSuccess,
		Remote: map[string]string{"id": "r1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, del.ID, "w/d", time.Minute); err != nil {
		t.Fatalf("claim of the delete: %v", err)
	}
}

// The file of a superseded version goes with the delivered files after
// the retention; a delete, which has none, gives no key.
func TestDocumentSupersededFilesRemoved(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	v1 := recordVersion(t, s, "a", "k", "s1")
	_ = recordVersion(t, s, "a", "k", "s2")
	if st := mustGet(t, s, v1.ID).Status; st != jobs.StatusSuperseded {
		t.Fatalf("v1 is %s", st)
	}
	if _, err := s.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.AllTenants(), Tenant: "a", Target: "t", Key: "k", MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	keys, err := s.TakeDeliveredObjects(ctx, 0, 10)
	if err != nil || len(keys) != 2 || keys[0] == "" || keys[1] == "" {
		t.Fatalf("taken: %q %v", keys, err)
	}
}

// Documents come by key, a page at a time; another tenant's are not seen.
func TestDocumentPages(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, k := range []string{"b", "a", "c/1", "c/2"} {
		recordVersion(t, s, "a", k, "s-"+k)
	}
	recordVersion(t, s, "b", "a", "x")
	var keys []string
	cursor := ""
	for range 5 {
		docs, next, err := s.Documents(ctx, jobs.InTenant("a"), jobs.DocumentFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			keys = append(keys, d.Key)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if got := fmt.Sprint(keys); got != "[a b c/1 c/2]" {
		t.Fatalf("keys %s", got)
	}
	docs, _, err := s.Documents(ctx, jobs.InTenant("a"), jobs.DocumentFilter{KeyPrefix: "c/", State: jobs.DocumentActive})
	if err != nil || len(docs) != 2 {
		t.Fatalf("prefix: %d %v", len(docs), err)
	}
	if _, _, err := s.Documents(ctx, jobs.InTenant("a"), jobs.DocumentFilter{Cursor: "!!"}); !errors.Is(err, jobs.ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// A keyed request naming a document answers its repeat with the jobs it
// answered, an unchanged version's included.
func TestDocumentKeyedRequests(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	req := func(key, sha string) jobs.Request {
		return jobs.Request{IdempotencyKey: key, Fingerprint: key + sha, Tenant: "a", APIKeyID: 0, Jobs: []jobs.New{{
			ID: uuid.Must(uuid.NewV7()).String(), Target: "t", Filename: "f", SHA256: sha, ObjectKey: "o/" + key,
			MaxAttempts: 2, DocumentKey: "doc"}}}
	}
	first, created, err := s.RecordRequest(ctx, req("K1", "s1"))
	if err != nil || !created || first[0].Version != 1 {
		t.Fatalf("first: %+v %v %v", first, created, err)
	}
	again, created, err := s.RecordRequest(ctx, req("K1", "s1"))
	if err != nil || created || again[0].ID != first[0].ID {
		t.Fatalf("repeat: %+v %v %v", again, created, err)
	}
	same, created, err := s.RecordRequest(ctx, req("K2", "s1"))
	if err != nil || !created || same[0].ID != first[0].ID || same[0].Recorded != jobs.RecordedUnchanged {
		t.Fatalf("unchanged under a new key: %+v %v %v", same, created, err)
	}
	rep, created, err := s.RecordRequest(ctx, req("K2", "s1"))
	if err != nil || created || len(rep) != 1 || rep[0].ID != first[0].ID {
		t.Fatalf("repeat of the unchanged: %+v %v %v", rep, created, err)
	}
}
