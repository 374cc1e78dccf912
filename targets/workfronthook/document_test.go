package workfronthook_test

import (
	"testing"

	fake "github.com/ferry-relay/ferry/internal/fakes/workfronthook"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
	"github.com/ferry-relay/ferry/targets/workfronthook"
)

func TestVersions(t *testing.T) {
	targetstest.RunVersions(t, targetstest.VersionHarness{
		New: func(t *testing.T) (targets.Deliverer, targetstest.VersionFake, map[string]string) {
			c, f := setup(t, fake.Options{}, workfronthook.Settings{})
			return c, f, params
		},
		Uncertain: map[string]bool{fake.StepUploadInit: true},
	})
}

// Every version goes through uploadInit with the document's documentId
// and a documentVersionId of its own (spec 1.1); param.documentId names
// a real Workfront document and wins; a delete is refused.
func TestVersionsIDs(t *testing.T) {
	c, f := setup(t, fake.Options{}, workfronthook.Settings{})
	p := map[string]string{workfronthook.ParamParentID: "folder-1", workfronthook.ParamDocumentID: "wf-doc-1", workfronthook.ParamDocumentVersionID: "ignored"}
	var remote map[string]string
	for v := 1; v <= 2; v++ {
		d := targetstest.NewDelivery(targetstest.File{Name: "r.txt", Data: []byte{byte(v)}}, p)
		d.Document = &targets.Document{ID: "D", Key: "r.txt", Version: v, Remote: remote}
		res, err := c.Deliver(ctx(t), d)
		if err != nil {
			t.Fatal(err)
		}
		remote = res.Remote
	}
	var inits []map[string]string
	for _, r := range f.Requests() {
		if r.Step == fake.StepUploadInit {
			inits = append(inits, r.Query)
		}
	}
	if len(inits) != 2 || inits[0]["documentId"] != "wf-doc-1" || inits[1]["documentId"] != "wf-doc-1" ||
		inits[0]["documentVersionId"] == inits[1]["documentVersionId"] || inits[1]["documentVersionId"] == "ignored" ||
		len(inits[1]["documentVersionId"]) != 32 {
		t.Fatalf("uploadInit queries %v: want documentId wf-doc-1 twice and two distinct derived documentVersionIds", inits)
	}
	if files := f.Files(); len(files) != 1 || len(files[0].Versions) != 2 || remote[workfronthook.RemoteProviderID] != files[0].ID {
		t.Fatalf("files %+v, remote %v: want one document with two versions", files, remote)
	}
	d := targetstest.NewDelivery(targetstest.File{Name: "r.txt"}, p)
	d.Document = &targets.Document{ID: "D", Key: "r.txt", Version: 3, Delete: true, Remote: remote}
	if _, err := c.Deliver(ctx(t), d); !targets.IsPermanent(err) || c.Versions().Delete {
		t.Fatalf("delete: %v, Versions %+v: want a permanent refusal and no Delete", err, c.Versions())
	}
}
