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
	// Long enough that the probe is surely not due at the next line, even
	// on a loaded machine; WaitForDBTime below waits for it.
	changed, err := a.Pause(ctx, "bw", "token: HTTP 401", time.Second)
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
	if err := a.ProbeFailed(ctx, "bw", "still 401", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	st, _ := b.Get(ctx, "bw")
	if st.State != targetstate.PausedCredentials || st.ProbeEvery != 2*time.Second || st.Reason != "still 401" {
		t.Fatalf("after a failed probe: %+v", st)
	}
	_ = a.ProbeFailed(ctx, "bw", "still 401", 3*time.Second)
	if st, _ := b.Get(ctx, "bw"); st.ProbeEvery != 3*time.Second {
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

// TestShareCircuit: an open circuit's next probe is the earliest any
// process shares; "probe now" on an open circuit is taken by one process.
func TestShareCircuit(t *testing.T) {
	db, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	a, b := targetstate.NewStore(db, "worker-a"), targetstate.NewStore(db, "worker-b")
	if req, err := a.ShareCircuit(ctx, "fl", time.Now().Add(time.Minute)); err != nil || req {
		t.Fatalf("a target not open: %v %v", req, err)
	}
	if ok, _ := a.RequestProbe(ctx, "fl", time.Minute); ok {
		t.Fatal("probe requested for an ok target")
	}
	if _, err := a.SetCircuit(ctx, "fl", true, "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	soon, later := time.Now().Add(10*time.Second).Truncate(time.Microsecond), time.Now().Add(40*time.Second).Truncate(time.Microsecond)
	for _, c := range []struct {
		s    *targetstate.Store
		next time.Time
	}{{a, later}, {b, soon}, {a, later}} {
		if req, err := c.s.ShareCircuit(ctx, "fl", c.next); err != nil || req {
			t.Fatalf("share: %v %v", req, err)
		}
	}
	if st, _ := a.Get(ctx, "fl"); !st.NextProbeAt.Equal(soon) {
		t.Errorf("next probe %s, want the earliest, %s", st.NextProbeAt, soon)
	}
	if ok, err := b.RequestProbe(ctx, "fl", time.Minute); err != nil || !ok {
		t.Fatalf("probe now on an open circuit: %v %v", ok, err)
	}
	ra, _ := a.ShareCircuit(ctx, "fl", later)
	rb, _ := b.ShareCircuit(ctx, "fl", soon)
	if ra == rb || !ra {
		t.Errorf("the request taken by a: %v, by b: %v; want exactly one, the first", ra, rb)
	}
	// A new opening forgets an old request and an old next probe.
	_, _ = a.RequestProbe(ctx, "fl", time.Minute)
	_, _ = a.SetCircuit(ctx, "fl", false, "")
	_, _ = a.SetCircuit(ctx, "fl", true, "HTTP 503 again")
	if st, _ := a.Get(ctx, "fl"); st.NextProbeAt.After(time.Unix(0, 0)) {
		t.Errorf("a new opening keeps the old next probe %s", st.NextProbeAt)
	}
	if req, _ := b.ShareCircuit(ctx, "fl", soon); req {
		t.Error("a new opening keeps an old probe request")
	}
}
