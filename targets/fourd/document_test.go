package fourd

import (
	"slices"
	"strconv"
	"testing"

	fake "github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"Login", credentials()},
		{"LoginNameAttribute", Settings{Username: testUser, Password: testPassword, NameAttribute: "fileName"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targetstest.RunVersions(t, targetstest.VersionHarness{
				New: func(t *testing.T) (targets.Deliverer, targetstest.VersionFake, map[string]string) {
					c, f, _ := setup(t, withLogin(), tc.s)
					return c, f, map[string]string{"key": "7"}
				},
			})
		})
	}
}

// The next version sends the __STAMP the last one left, without reading
// the entity; when someone saved the entity meanwhile, the stale stamp is
// replaced by the current one and the version lands once.
func TestVersionsStamp(t *testing.T) {
	c, f, _ := setup(t, fake.Options{}, Settings{})
	params := map[string]string{"key": "9"}
	d1 := delivery("a.pdf", []byte("one"), params)
	d1.Document = &targets.Document{ID: "D", Key: "a.pdf", Version: 1}
	res1, err := c.Deliver(ctx(t), d1)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.Entity("Invoices", "9")
	if res1.Remote[RemoteEntity] != "Invoices(9)/pdf" || res1.Remote[RemoteStamp] != strconv.FormatInt(e.Stamp, 10) {
		t.Fatalf("remote %v, entity at stamp %d", res1.Remote, e.Stamp)
	}
	before := len(f.Requests())
	d2 := delivery("a.pdf", []byte("two"), params)
	d2.Document = &targets.Document{ID: "D", Key: "a.pdf", Version: 2, Remote: res1.Remote}
	res2, err := c.Deliver(ctx(t), d2)
	if err != nil {
		t.Fatal(err)
	}
	if got := steps(f)[before:]; !slices.Equal(got, []string{fake.StepUpload, fake.StepUpdate}) {
		t.Errorf("version 2 took steps %v, want upload and update only", got)
	}
	f.Touch("Invoices", "9") // another 4D user saves the entity
	d3 := delivery("a.pdf", []byte("three"), params)
	d3.Document = &targets.Document{ID: "D", Key: "a.pdf", Version: 3, Remote: res2.Remote}
	res3, err := c.Deliver(ctx(t), d3)
	if err != nil {
		t.Fatalf("version 3 after someone saved the entity: %v", err)
	}
	e, _ = f.Entity("Invoices", "9")
	if got := f.DocumentVersions()["Invoices(9)/pdf"]; len(got) != 3 || got[2] != d3.SHA256 || res3.Remote[RemoteStamp] != strconv.FormatInt(e.Stamp, 10) {
		t.Fatalf("versions %v, remote %v, stamp %d: want 3 versions, the last the third, and the stamp kept", got, res3.Remote, e.Stamp)
	}
	del := delivery("a.pdf", nil, params)
	del.Document = &targets.Document{ID: "D", Key: "a.pdf", Version: 4, Delete: true, Remote: res3.Remote}
	if _, err := c.Deliver(ctx(t), del); !targets.IsPermanent(err) {
		t.Fatalf("a delete on 4d: want permanent, got %v", err)
	}
	if c.Versions().Delete || !c.Versions().Update {
		t.Errorf("Versions %+v: want Update, no Delete", c.Versions())
	}
}
