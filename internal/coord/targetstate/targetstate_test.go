package targetstate_test

import (
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/testenv"
)

func TestPauseProbeResume(t *testing.T) {
	db, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	a, b := targetstate.NewStore(db, "worker-a"), targetstate.NewStore(db, "worker-b")
	if st, err := a.Get(ctx, "bw"); err != nil || st.State != targetstate.OK {
		t.Fatalf("unknown target: %+v %v", st, err)
	}
	changed, err := a.Pause(ctx, "bw", "token: HTTP 401", 50*time.Millisecond)
	if err != nil || !changed {
		t.Fatalf("pause: %v %v", changed, err)
	}
	if changed, _ := b.Pause(ctx, "bw", "again", time.Hour); changed {
		t.Fatal("a second pause reported a change: the log would say it twice")
	}
	if ok, _ := a.ClaimProbe(ctx, "bw"); ok {
		t.Fatal("probe claimed before it was due")
	}
	paused, err := a.Get(ctx, "bw")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitForDBTime(t, db, paused.NextProbeAt) // the probe falls due
	okA, _ := a.ClaimProbe(ctx, "bw")
	okB, _ := b.ClaimProbe(ctx, "bw")
	if okA == okB {
		t.Fatalf("probe claims %v %v: exactly one process must probe", okA, okB)
	}
	if err := a.ProbeFailed(ctx, "bw", "still 401", 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, _ := b.Get(ctx, "bw")
	if st.State != targetstate.PausedCredentials || st.ProbeEvery != 100*time.Millisecond || st.Reason != "still 401" {
		t.Fatalf("after a failed probe: %+v", st)
	}
	_ = a.ProbeFailed(ctx, "bw", "still 401", 150*time.Millisecond)
	if st, _ := b.Get(ctx, "bw"); st.ProbeEvery != 150*time.Millisecond {
		t.Fatalf("backoff past its cap: %v", st.ProbeEvery)
	}
	if paused, _ := b.RequestProbe(ctx, "bw", 50*time.Millisecond); !paused {
		t.Fatal("resume request on a paused target")
	}
	if ok, _ := a.ClaimProbe(ctx, "bw"); !ok {
		t.Fatal("a requested probe is due at once")
	}
	if changed, _ := a.Resume(ctx, "bw"); !changed {
		t.Fatal("resume")
	}
	list, err := b.List(ctx, []string{"bw", "other"})
	if err != nil || len(list) != 2 || list[0].State != targetstate.OK || list[1].State != targetstate.OK {
		t.Fatalf("list %+v %v", list, err)
	}
	if changed, _ := a.SetCircuit(ctx, "bw", true, "5 failures"); !changed {
		t.Fatal("circuit open")
	}
	if changed, _ := a.Pause(ctx, "bw", "401", time.Minute); !changed {
		t.Fatal("pause over an open circuit")
	}
	if changed, _ := a.SetCircuit(ctx, "bw", false, ""); changed {
		t.Fatal("closing the circuit must not resume a paused target")
	}
}
