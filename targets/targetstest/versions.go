package targetstest

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
	"github.com/ferry-relay/ferry/targets"
)

// VersionFake is what the documents suite needs from a fake (see
// fakes/contract).
type VersionFake = contract.Versioned

// VersionHarness builds a fresh fake that keeps versions and a connector
// pointed at it.
type VersionHarness struct {
	New func(t *testing.T) (targets.Deliverer, VersionFake, map[string]string)
	// Uncertain lists the steps whose repeat after a lost answer the
	// connector must mark uncertain (Delivery.MarkUncertain), because the
	// system's documentation promises nothing about a repeat, though the
	// fake recognises it: the suite still wants no duplicate version.
	Uncertain map[string]bool
}

// RunVersions runs the documents suite (issue 21): a first version
// creates the remote document and reports its identity in Result.Remote;
// the next version, given that identity, becomes a second version of the
// same remote document; a lost answer at any step of either version
// leaves no duplicate version; and, where the connector deletes, a delete
// removes the document and the next version starts a new one.
func RunVersions(t *testing.T, h VersionHarness) {
	t.Run("SecondVersionUpdatesSameDocument", func(t *testing.T) {
		c, fake, params := h.New(t)
		doc := &targets.Document{ID: "d-1", Key: "reports/Q1 été.pdf", Version: 1}
		first := DeliverVersion(t, c, doc, File{Name: "Q1 été.pdf", Data: RandomBytes(10<<10, 1)}, params)
		doc = nextVersion(doc, first.Remote)
		second := DeliverVersion(t, c, doc, File{Name: "Q1 été.pdf", Data: RandomBytes(12<<10, 2)}, params)
		if second.RemoteID != first.RemoteID {
			t.Errorf("version 2 remote id %q, version 1 %q: want the same document", second.RemoteID, first.RemoteID)
		}
		wantVersions(t, fake, first.RemoteID, sha(RandomBytes(10<<10, 1)), sha(RandomBytes(12<<10, 2)))
	})
	cprobe, probe, _ := h.New(t)
	for _, step := range probe.Steps() {
		t.Run("FirstVersionAnswerLostAfter/"+step, func(t *testing.T) {
			c, fake, params := h.New(t)
			fake.LoseAnswer(step)
			doc := &targets.Document{ID: "d-lost1", Key: "lost.bin", Version: 1}
			data := RandomBytes(20<<10, 3)
			res := deliverRetrying(t, c, fake, doc, File{Name: "lost.bin", Data: data}, params, false, h.Uncertain[step])
			wantVersions(t, fake, res.RemoteID, sha(data))
		})
	}
	for _, step := range probe.VersionSteps() {
		for _, refuse := range []bool{false, true} {
			name := "SecondVersionAnswerLostAfter/" + step
			if refuse {
				name += "/ThenLookupRefused"
			}
			t.Run(name, func(t *testing.T) { testLostVersion(t, h, step, refuse) })
		}
	}
	v, ok := cprobe.(targets.Versioner)
	if ok && v.Versions().Delete {
		t.Run("DeleteThenNewDocument", func(t *testing.T) { testDelete(t, h, "") })
		for _, step := range probe.DeleteSteps() {
			t.Run("DeleteAnswerLostAfter/"+step, func(t *testing.T) { testDelete(t, h, step) })
		}
	}
}

func testLostVersion(t *testing.T, h VersionHarness, step string, refuseLookup bool) {
	c, fake, params := h.New(t)
	doc := &targets.Document{ID: "d-lost2", Key: "lost2.bin", Version: 1}
	v1, v2 := RandomBytes(5<<10, 4), RandomBytes(6<<10, 5)
	first := DeliverVersion(t, c, doc, File{Name: "lost2.bin", Data: v1}, params)
	fake.LoseAnswer(step)
	doc = nextVersion(doc, first.Remote)
	res := deliverRetrying(t, c, fake, doc, File{Name: "lost2.bin", Data: v2}, params, refuseLookup, h.Uncertain[step])
	if res.RemoteID != first.RemoteID {
		t.Errorf("version 2 remote id %q, version 1 %q", res.RemoteID, first.RemoteID)
	}
	wantVersions(t, fake, first.RemoteID, sha(v1), sha(v2))
}

func testDelete(t *testing.T, h VersionHarness, loseStep string) {
	c, fake, params := h.New(t)
	doc := &targets.Document{ID: "d-del", Key: "gone.txt", Version: 1}
	first := DeliverVersion(t, c, doc, File{Name: "gone.txt", Data: []byte("soon gone")}, params)
	if loseStep != "" {
		fake.LoseAnswer(loseStep)
	}
	del := nextVersion(doc, first.Remote)
	del.Delete = true
	res := deliverRetrying(t, c, fake, del, File{Name: "gone.txt"}, params, false, false)
	if got := fake.DocumentVersions(); len(got[first.RemoteID]) != 0 {
		t.Fatalf("after the delete the fake still holds %s: %v", first.RemoteID, got)
	}
	if remote := merge(first.Remote, res.Remote); len(remote) != 0 {
		// The worker empties the record of a deleted document too; the
		// connector's own answer must not leave a handle to it either.
		t.Errorf("after the delete the remote identity still holds %v", remote)
	}
	again := &targets.Document{ID: "d-del", Key: "gone.txt", Version: 3}
	res3 := DeliverVersion(t, c, again, File{Name: "gone.txt", Data: []byte("back again")}, params)
	wantVersions(t, fake, res3.RemoteID, sha([]byte("back again")))
	if n := len(fake.DocumentVersions()); n != 1 {
		t.Errorf("the fake holds %d documents after delete and a new version, want 1", n)
	}
}

// DeliverVersion delivers f as doc's version in one attempt, failing the
// test on an error or a result without Remote.
func DeliverVersion(t *testing.T, c targets.Deliverer, doc *targets.Document, f File, params map[string]string) targets.Result {
	t.Helper()
	d := NewDelivery(f, params)
	d.JobID = fmt.Sprintf("job-%s-v%d", doc.ID, doc.Version)
	d.Document = doc
	res, err := c.Deliver(ctx(t), d)
	if err != nil {
		t.Fatalf("version %d of %s: %v", doc.Version, doc.Key, err)
	}
	if len(res.Remote) == 0 && !doc.Delete {
		t.Fatalf("version %d of %s: Result.Remote is empty: the next version could not find the document", doc.Version, doc.Key)
	}
	return res
}

// deliverRetrying delivers like the worker after a lost answer: the same
// Delivery (so the same checkpoint) until an attempt succeeds. uncertain
// says the repeat must be marked uncertain; otherwise it must not be.
func deliverRetrying(t *testing.T, c targets.Deliverer, fake VersionFake, doc *targets.Document, f File, params map[string]string, refuseLookup, uncertain bool) targets.Result {
	t.Helper()
	d := NewDelivery(f, params)
	d.JobID = fmt.Sprintf("job-%s-v%d", doc.ID, doc.Version)
	d.Document = doc
	var err error
	for try := range retryLimit {
		var res targets.Result
		if res, err = c.Deliver(ctx(t), d); err == nil {
			switch {
			case uncertain && d.Uncertain() == "":
				t.Errorf("version %d: the repeat of a step the system promises nothing about was not marked uncertain", doc.Version)
			case !uncertain && d.Uncertain() != "":
				t.Errorf("version %d: attempt marked uncertain (%s): this step must be exactly-once", doc.Version, d.Uncertain())
			}
			return res
		}
		if targets.IsPermanent(err) {
			t.Fatalf("version %d, attempt %d after a lost answer: permanent failure: %v", doc.Version, try+1, err)
		}
		if try == 0 && refuseLookup {
			fake.RefuseLookup()
		}
	}
	t.Fatalf("version %d: no success in %d attempts: %v", doc.Version, retryLimit, err)
	return targets.Result{}
}

// nextVersion is the document's next version with the remote identity the
// worker keeps: the earlier one merged with what the delivery reported.
func nextVersion(doc *targets.Document, reported map[string]string) *targets.Document {
	return &targets.Document{ID: doc.ID, Key: doc.Key, Version: doc.Version + 1, Remote: merge(doc.Remote, reported)}
}

// merge is the worker's documents.remote || Result.Remote: an empty value
// removes a key.
func merge(kept, reported map[string]string) map[string]string {
	out := maps.Clone(kept)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range reported {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func wantVersions(t *testing.T, fake VersionFake, remoteID string, shas ...string) {
	t.Helper()
	all := fake.DocumentVersions()
	got, ok := all[remoteID]
	if !ok {
		t.Fatalf("the fake holds no document %q (it holds %v)", remoteID, slices.Collect(maps.Keys(all)))
	}
	if !slices.Equal(got, shas) {
		t.Fatalf("document %s holds versions %v, want %v", remoteID, short(got), short(shas))
	}
	if len(all) != 1 {
		t.Fatalf("the fake holds %d documents, want 1: %v", len(all), all)
	}
}

func sha(b []byte) string { return NewDelivery(File{Data: b}, nil).SHA256 }

func short(shas []string) []string {
	out := make([]string, len(shas))
	for i, s := range shas {
		out[i] = s[:min(8, len(s))]
	}
	return out
}
