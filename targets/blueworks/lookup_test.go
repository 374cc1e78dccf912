package blueworks

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	fake "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

// attempt makes one delivery attempt of d within timeout, as the worker
// does with the target's timeout.
func attempt(c *Client, d *targets.Delivery, timeout time.Duration) (targets.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Deliver(ctx, d)
}

// lostAnswers are the four ways a FileUpload that landed loses its answer.
var lostAnswers = []struct {
	name    string
	how     fake.Lost
	timeout time.Duration // the first attempt's
}{
	{"connection lost", fake.LostDrop, 20 * time.Second},
	{"gateway 502", fake.LostGateway, 20 * time.Second},
	{"garbled 200", fake.LostGarbled, 20 * time.Second},
	{"attempt timed out", fake.LostLate, time.Second},
}

// TestLostAnswerAdopted: after each way of losing the answer of a
// FileUpload that landed, the next attempt finds the file with ListFiles
// and adopts it: exactly one file at Blueworks, not marked uncertain.
func TestLostAnswerAdopted(t *testing.T) {
	for _, tt := range lostAnswers {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newEnv(t, fake.Options{}, nil)
			if err := f.LoseAnswerAs(fake.StepUpload, tt.how); err != nil {
				t.Fatal(err)
			}
			d := targetstest.NewDelivery(targetstest.File{Name: "Plan été.pdf", Data: targetstest.RandomBytes(70<<10, 5)}, activity)
			if _, err := attempt(c, d, tt.timeout); err == nil || targets.IsPermanent(err) {
				t.Fatalf("first attempt: %v, want a retryable error", err)
			}
			res, err := attempt(c, d, 20*time.Second)
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			docs := f.Documents()
			if len(docs) != 1 || f.Creations() != 1 || docs[0].RemoteID != res.RemoteID || docs[0].SHA256 != d.SHA256 {
				t.Fatalf("documents %+v (%d created), result %+v; want exactly the one", docs, f.Creations(), res)
			}
			if d.Uncertain() != "" {
				t.Errorf("adopted file marked uncertain: %s", d.Uncertain())
			}
			if d.Checkpoint[CheckpointSent] != "" {
				t.Errorf("checkpoint still says sent: %v", d.Checkpoint)
			}
			if got := trace(f); !strings.Contains(got, "ListFiles:200") || strings.Count(got, "FileUpload:") != 1 {
				t.Errorf("requests %q: want one FileUpload and a ListFiles", got)
			}
		})
	}
}

// TestLostAnswerWithoutAdministrator: ListFiles needs an administrator;
// with other credentials it answers 401 and the connector keeps the
// documented behaviour: it uploads again and marks the repeat uncertain.
func TestLostAnswerWithoutAdministrator(t *testing.T) {
	for _, tt := range lostAnswers {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newEnv(t, fake.Options{Users: []string{"uploader", "boss"}, Admins: []string{"boss"}}, nil)
			if err := f.LoseAnswerAs(fake.StepUpload, tt.how); err != nil {
				t.Fatal(err)
			}
			d := targetstest.NewDelivery(targetstest.File{Name: "plan.pdf", Data: targetstest.RandomBytes(10<<10, 6)}, activity)
			if _, err := attempt(c, d, tt.timeout); err == nil || targets.IsPermanent(err) {
				t.Fatalf("first attempt: %v, want a retryable error", err)
			}
			res, err := attempt(c, d, 20*time.Second)
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			if d.Uncertain() == "" {
				t.Error("repeat without a lookup not marked uncertain")
			}
			docs := f.Documents()
			if len(docs) != 2 || docs[1].RemoteID != res.RemoteID {
				t.Fatalf("documents %+v, result %+v: want the documented two", docs, res)
			}
			if got := trace(f); !strings.Contains(got, "ListFiles:401") {
				t.Errorf("requests %q: want ListFiles refused", got)
			}
		})
	}
}

// TestLookupOutcomes covers what the lookup may answer besides "found".
func TestLookupOutcomes(t *testing.T) {
	t.Run("upload did not land: sent again, not uncertain", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		f.Fail(fake.StepUpload, 1, http.StatusBadGateway, 0) // refused before storing
		d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, activity)
		if _, err := attempt(c, d, 20*time.Second); err == nil {
			t.Fatal("first attempt succeeded")
		}
		res, err := attempt(c, d, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if docs := f.Documents(); len(docs) != 1 || docs[0].RemoteID != res.RemoteID || d.Uncertain() != "" {
			t.Fatalf("documents %+v, uncertain %q", docs, d.Uncertain())
		}
	})
	t.Run("lookup fails: no upload, retry adopts", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		f.LoseAnswer(fake.StepUpload)
		d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("hello")}, activity)
		if _, err := attempt(c, d, 20*time.Second); err == nil {
			t.Fatal("first attempt succeeded")
		}
		f.RefuseLookup()
		_, err := attempt(c, d, 20*time.Second)
		if err == nil || targets.IsPermanent(err) || !strings.Contains(err.Error(), "cannot tell") {
			t.Fatalf("lookup refused: %v, want retryable cannot tell", err)
		}
		if _, err := attempt(c, d, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := f.Creations(); n != 1 {
			t.Fatalf("%d files created, want 1", n)
		}
	})
	t.Run("another job's file is not adopted", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		data := []byte("same name, same size")
		other := targetstest.NewDelivery(targetstest.File{Name: "same.txt", Data: data}, activity)
		d := targetstest.NewDelivery(targetstest.File{Name: "same.txt", Data: []byte("SAME NAME, SAME SIZE")}, activity)
		f.Drop(fake.StepUpload, 1) // d's upload never lands
		if _, err := attempt(c, d, 20*time.Second); err == nil {
			t.Fatal("dropped attempt succeeded")
		}
		if _, err := attempt(c, other, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := attempt(c, d, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if docs := f.Documents(); len(docs) != 2 || docs[0].SHA256 == docs[1].SHA256 {
			t.Fatalf("documents %+v: want both files", docs)
		}
	})
	t.Run("checkpoint without a time: documented repeat", func(t *testing.T) {
		c, f := newEnv(t, fake.Options{}, nil)
		d := targetstest.NewDelivery(targetstest.File{Name: "a.txt", Data: []byte("old")}, activity)
		d.Checkpoint = targets.Checkpoint{CheckpointSent: "1"} // written before the lookup existed
		if _, err := attempt(c, d, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if d.Uncertain() == "" || strings.Contains(trace(f), "ListFiles") {
			t.Fatalf("uncertain %q, requests %q", d.Uncertain(), trace(f))
		}
	})
}

// TestSuiteLostAnswerWithoutAdministrator: without an administrator,
// ListFiles is refused and a lost FileUpload answer stays the documented
// limit: a repeat, marked uncertain.
func TestSuiteLostAnswerWithoutAdministrator(t *testing.T) {
	h := targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
		c, f := newEnv(t, fake.Options{Users: []string{"uploader"}}, nil)
		return c, f, activity
	}, Uncertain: map[string]bool{fake.StepUpload: true}}
	for _, refuse := range []bool{false, true} {
		if err := targetstest.CheckLostAnswer(t, h, fake.StepUpload, refuse); err != nil {
			t.Fatal(err)
		}
	}
}
