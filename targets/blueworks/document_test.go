package blueworks

import (
	"context"
	"strings"
	"testing"
	"time"

	fake "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

func deliverVersion(t *testing.T, c *Client, doc *targets.Document, data string) (targets.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := targetstest.NewDelivery(targetstest.File{Name: "plan.txt", Data: []byte(data)}, activity)
	d.Document = doc
	return c.Deliver(ctx, d)
}

// versions: refuse (the default) delivers a first version and refuses the
// next with a reason that names versions: append.
func TestVersionsRefuse(t *testing.T) {
	c, f := newEnv(t, fake.Options{}, nil)
	v := c.Versions()
	if v.Update || v.Append || v.Delete || !strings.Contains(v.Refusal, "versions: append") {
		t.Fatalf("Versions %+v: want a refusal naming versions: append", v)
	}
	res, err := deliverVersion(t, c, &targets.Document{ID: "D", Key: "plan.txt", Version: 1}, "v1")
	if err != nil || res.Remote[RemoteAttachmentID] != res.RemoteID {
		t.Fatalf("version 1: %+v, %v", res, err)
	}
	_, err = deliverVersion(t, c, &targets.Document{ID: "D", Key: "plan.txt", Version: 2, Remote: res.Remote}, "v2")
	if !targets.IsPermanent(err) || !strings.Contains(err.Error(), "versions: append") {
		t.Fatalf("version 2: want the permanent refusal, got %v", err)
	}
	if n := len(f.Documents()); n != 1 {
		t.Fatalf("Blueworks holds %d attachments, want 1", n)
	}
}

// versions: append adds each version as another attachment and keeps
// their ids; a delete is refused.
func TestVersionsAppend(t *testing.T) {
	c, f := newEnv(t, fake.Options{}, func(s *Settings) { s.Versions = targets.VersionsAppend })
	if v := c.Versions(); !v.Append || v.Delete {
		t.Fatalf("Versions %+v: want Append, no Delete", v)
	}
	var remote map[string]string
	var ids []string
	for i, data := range []string{"v1", "v2", "v3"} {
		res, err := deliverVersion(t, c, &targets.Document{ID: "D", Key: "plan.txt", Version: i + 1, Remote: remote}, data)
		if err != nil {
			t.Fatal(err)
		}
		remote, ids = res.Remote, append(ids, res.RemoteID)
	}
	if n := len(f.Documents()); n != 3 {
		t.Fatalf("Blueworks holds %d attachments, want 3", n)
	}
	if remote[RemoteAttachmentIDs] != strings.Join(ids, ",") || remote[RemoteAttachmentID] != ids[2] {
		t.Fatalf("remote %v, attachments %v", remote, ids)
	}
	_, err := deliverVersion(t, c, &targets.Document{ID: "D", Key: "plan.txt", Version: 4, Delete: true, Remote: remote}, "")
	if !targets.IsPermanent(err) {
		t.Fatalf("delete: want permanent, got %v", err)
	}
}

func TestVersionsSetting(t *testing.T) {
	file := "targets:\n" +
		"  - {name: a, kind: blueworks, base_url: 'http://x', client_id: i, client_secret: s, versions: append}\n" +
		"  - {name: b, kind: blueworks, base_url: 'http://x', client_id: i, client_secret: s, versions: put}\n" +
		"  - {name: c, kind: blueworks, base_url: 'http://x', client_id: i, client_secret: s}\n"
	cfgs, err := targets.ParseFile(strings.NewReader(file), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfgs[0])
	if err != nil || !a.(targets.Versioner).Versions().Append {
		t.Errorf("versions: append: %v", err)
	}
	if _, err := New(cfgs[1]); err == nil {
		t.Error("versions: put accepted on blueworks")
	}
	c, err := New(cfgs[2])
	if err != nil || c.(targets.Versioner).Versions().Refusal == "" {
		t.Errorf("default: %v, want refuse", err)
	}
}
