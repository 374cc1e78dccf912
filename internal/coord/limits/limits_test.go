package limits_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// Three processes, 40 deliveries racing for a cap of 5 shared with
// another group: never more than 5 at once, every delivery runs.
func TestCapHeldAcrossProcesses(t *testing.T) {
	db, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	var procs []*limits.Leases
	for _, name := range []string{"a", "b", "c"} {
		procs = append(procs, limits.New(db, "proc-"+name, 5*time.Second))
	}
	lims := []limits.Limit{{Group: "wf-acme", Max: 5}, {Group: "target-x", Max: 8}}
	var now, peak, done atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		l := procs[i%len(procs)]
		wg.Go(func() {
			p, err := l.Acquire(ctx, lims)
			if err != nil {
				t.Error(err)
				return
			}
			n := now.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			now.Add(-1)
			l.Release(ctx, p)
			done.Add(1)
		})
	}
	wg.Wait()
	if peak.Load() > 5 || done.Load() != 40 {
		t.Fatalf("peak %d in flight (cap 5), %d of 40 done", peak.Load(), done.Load())
	}
	if n, _ := procs[0].InUse(ctx, "wf-acme"); n != 0 {
		t.Errorf("%d slots still held after every release", n)
	}
}

// A process that dies holding slots gives them back when its lease
// expires; one that renews keeps them.
func TestDeadHolderSlotsExpire(t *testing.T) {
	db, _ := testenv.Postgres(t)
	ctx := testenv.Context(t)
	lim := []limits.Limit{{Group: "g", Max: 1}}
	dead := limits.New(db, "dead", 300*time.Millisecond)
	if _, ok, err := dead.TryAcquire(ctx, lim); !ok || err != nil {
		t.Fatalf("first take: %v %v", ok, err)
	}
	alive := limits.New(db, "alive", 300*time.Millisecond)
	if _, ok, _ := alive.TryAcquire(ctx, lim); ok {
		t.Fatal("took a slot the dead process still holds")
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := alive.Acquire(actx, lim)
	if err != nil {
		t.Fatalf("the dead holder's slot never came back: %v", err)
	}
	var leased time.Time
	if err := db.QueryRow(ctx, `SELECT expires_at FROM limit_slots WHERE holder = 'alive'`).Scan(&leased); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	go alive.Run(rctx)
	// Two more leases past the first one's end: only renewals hold it now.
	testenv.WaitForDBTime(t, db, leased.Add(600*time.Millisecond))
	if _, ok, _ := dead.TryAcquire(ctx, lim); ok {
		t.Fatal("a renewed slot expired")
	}
	alive.Release(ctx, p)
	stop()
}
