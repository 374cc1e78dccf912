package targetstest_test

import (
	"context"
	"net/http/httptest"
	"testing"

	fdfake "github.com/ferry-relay/ferry/internal/fakes/fourd"
	wffake "github.com/ferry-relay/ferry/internal/fakes/workfront"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/fourd"
	"github.com/ferry-relay/ferry/targets/targetstest"
	"github.com/ferry-relay/ferry/targets/workfront"
)

// forgetful is a connector that ignores its checkpoint: every attempt
// starts from nothing, as if earlier attempts had saved nothing.
type forgetful struct{ targets.Deliverer }

func (f forgetful) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	d.Checkpoint = targets.Checkpoint{}
	return f.Deliverer.Deliver(ctx, d)
}

// TestSuiteCatchesIgnoredCheckpoint proves the suite fails a connector
// that ignores its checkpoint: after a lost answer it creates a second
// document (Workfront) or binds the file again (4D).
func TestSuiteCatchesIgnoredCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		harness    func(wrap bool) targetstest.Harness
	}{
		{"workfront", wffake.StepDocument, func(wrap bool) targetstest.Harness {
			return targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
				f := wffake.New(wffake.Options{})
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				c, err := workfront.NewClient(workfront.Settings{BaseURL: srv.URL, APIKey: wffake.APIKeyDefault}, srv.Client())
				if err != nil {
					t.Fatal(err)
				}
				var d targets.Deliverer = c
				if wrap {
					d = forgetful{c}
				}
				return d, f, map[string]string{workfront.ParamObjID: wffake.DemoProjectID, workfront.ParamDocObjCode: "PROJ"}
			}}
		}},
		{"4d", fdfake.StepUpdate, func(wrap bool) targetstest.Harness {
			return targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
				f := fdfake.New(fdfake.Options{})
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				c, err := fourd.NewClient(fourd.Settings{URL: srv.URL, Dataclass: "Invoices", Attribute: "pdf"}, srv.Client())
				if err != nil {
					t.Fatal(err)
				}
				var d targets.Deliverer = c
				if wrap {
					d = forgetful{c}
				}
				return d, f, map[string]string{"key": "3"}
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := targetstest.CheckLostAnswer(t, tc.harness(false), tc.step, true); err != nil {
				t.Fatalf("the real connector fails the check: %v", err)
			}
			err := targetstest.CheckLostAnswer(t, tc.harness(true), tc.step, false)
			if err == nil {
				t.Fatal("the suite passed a connector that ignores its checkpoint")
			}
			t.Logf("as it should, the suite says: %v", err)
		})
	}
}
