package workfront

import (
	"testing"

	wffake "github.com/ferry-relay/ferry/internal/fakes/workfront"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"Session", Settings{}},
		{"APIKey", Settings{APIKey: wffake.APIKeyDefault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			targetstest.RunVersions(t, targetstest.VersionHarness{
				New: func(t *testing.T) (targets.Deliverer, targetstest.VersionFake, map[string]string) {
					c, fake := newPair(t, wffake.Options{}, tc.s)
					if tc.s.APIKey != "" {
						return c, apiKeyVersions{fake}, projectParams
					}
					return c, fake, projectParams
				},
			})
		})
	}
}

type apiKeyVersions struct{ *wffake.Server }

func (apiKeyVersions) Steps() []string { return []string{wffake.StepUpload, wffake.StepDocument} }

func docDelivery(doc *targets.Document, name string, data []byte) *targets.Delivery {
	d := targetstest.NewDelivery(targetstest.File{Name: name, Data: data}, projectParams)
	d.Document = doc
	return d
}

// Version 1 sets the extRefID; a version after ferry lost its records
// (no Remote) finds the document by it and adds a version, and finds by
// docv search a version that is there already, so that nothing is made
// twice.
func TestVersionsAfterLostRecords(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	v1 := docDelivery(&targets.Document{ID: "01DOC", Key: "a.pdf", Version: 1}, "a.pdf", []byte("one"))
	res, err := c.Deliver(ctx(t), v1)
	if err != nil {
		t.Fatal(err)
	}
	docs := fake.StoredDocuments()
	if len(docs) != 1 || docs[0].ExtRefID != "ferry:01DOC" || res.Remote[RemoteDocumentID] != docs[0].ID {
		t.Fatalf("documents %+v, remote %v: want one with extRefID ferry:01DOC", docs, res.Remote)
	}
	// Version 2, ferry having lost the remote record: twice, as after a
	// lost Finish.
	for range 2 {
		v2 := docDelivery(&targets.Document{ID: "01DOC", Key: "a.pdf", Version: 2}, "a.pdf", []byte("two"))
		res2, err := c.Deliver(ctx(t), v2)
		if err != nil {
			t.Fatal(err)
		}
		if res2.RemoteID != res.RemoteID {
			t.Fatalf("version 2 went to %s, version 1 is %s", res2.RemoteID, res.RemoteID)
		}
	}
	if got := fake.DocumentVersions()[res.RemoteID]; len(got) != 2 || fake.Creations() != 1 {
		t.Fatalf("document holds %d versions, %d documents created: want 2 versions of 1 document", len(got), fake.Creations())
	}
	if v := fake.StoredDocuments()[0].Versions[1]; v.Version != "v2.0" || v.FileName != "a.pdf" {
		t.Errorf("version 2: %+v", v)
	}
}

// A docv search that fails after a lost docv answer adds nothing and is
// retried; a document deleted in Workfront behind ferry's back fails the
// version permanently.
func TestVersionsRefusals(t *testing.T) {
	c, fake := newPair(t, wffake.Options{}, Settings{})
	res, err := c.Deliver(ctx(t), docDelivery(&targets.Document{ID: "D", Key: "k", Version: 1}, "k.txt", []byte("1")))
	if err != nil {
		t.Fatal(err)
	}
	fake.LoseAnswer(wffake.StepDocv)
	fake.Fail(wffake.StepDocvFind, 1, 500, 0)
	v2 := docDelivery(&targets.Document{ID: "D", Key: "k", Version: 2, Remote: res.Remote}, "k.txt", []byte("2"))
	for want := range []string{"lost", "search failed"} {
		if _, err := c.Deliver(ctx(t), v2); err == nil || targets.IsPermanent(err) {
			t.Fatalf("attempt %d: want a retryable failure, got %v", want+1, err)
		}
	}
	if _, err := c.Deliver(ctx(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := fake.DocumentVersions()[res.RemoteID]; len(got) != 2 {
		t.Fatalf("%d versions, want 2", len(got))
	}
	del := docDelivery(&targets.Document{ID: "D", Key: "k", Version: 3, Delete: true, Remote: res.Remote}, "k.txt", nil)
	if _, err := c.Deliver(ctx(t), del); err != nil {
		t.Fatal(err)
	}
	v4 := docDelivery(&targets.Document{ID: "D", Key: "k", Version: 4, Remote: res.Remote}, "k.txt", []byte("4"))
	if _, err := c.Deliver(ctx(t), v4); !targets.IsPermanent(err) {
		t.Fatalf("a version of a document deleted at Workfront: want permanent, got %v", err)
	}
}

// A delete job has no params (ferry records none for it): the document is
// deleted by its remote id, or found by its extRefID when ferry lost it.
func TestDeleteWithoutParams(t *testing.T) {
	for _, lost := range []bool{false, true} {
		c, fake := newPair(t, wffake.Options{}, Settings{})
		res, err := c.Deliver(ctx(t), docDelivery(&targets.Document{ID: "D", Key: "k", Version: 1}, "k.txt", []byte("1")))
		if err != nil {
			t.Fatal(err)
		}
		remote := res.Remote
		if lost {
			remote = nil
		}
		del := targetstest.NewDelivery(targetstest.File{Name: "k"}, nil)
		del.Document = &targets.Document{ID: "D", Key: "k", Version: 2, Delete: true, Remote: remote}
		if _, err := c.Deliver(ctx(t), del); err != nil {
			t.Fatalf("delete (remote lost: %v): %v", lost, err)
		}
		if got := fake.DocumentVersions(); len(got) != 0 {
			t.Fatalf("delete (remote lost: %v): Workfront still holds %v", lost, got)
		}
	}
}
