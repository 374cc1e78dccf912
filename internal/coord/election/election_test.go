package election_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/coord/election"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestOneLeader runs three electors on one schema: exactly one leads, and
// when it stops another takes over; an elector on another schema leads
// on its own.
func TestOneLeader(t *testing.T) {
	_, url := testenv.Postgres(t)
	ctx := testenv.Context(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	type member struct {
		e    *election.Elector
		stop context.CancelFunc
		done chan struct{}
	}
	start := func(p *pgxpool.Pool) *member {
		mctx, stop := context.WithCancel(ctx)
		m := &member{e: election.New(p, 50*time.Millisecond, log), stop: stop, done: make(chan struct{})}
		go func() { defer close(m.done); m.e.Run(mctx) }()
		return m
	}
	var ms []*member
	for range 3 {
		p, err := pgxpool.New(ctx, url) // a pool per "process"
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ms = append(ms, start(p))
	}
	leaders := func() []int {
		var out []int
		for i, m := range ms {
			if m.e.Leading() {
				out = append(out, i)
			}
		}
		return out
	}
	waitOne := func() int {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if l := leaders(); len(l) == 1 {
				// Still one a few intervals later.
				time.Sleep(200 * time.Millisecond)
				if l2 := leaders(); len(l2) == 1 && l2[0] == l[0] {
					return l[0]
				}
			} else if len(l) > 1 {
				t.Fatalf("%d leaders at once", len(l))
			}
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := waitOne()
	ms[first].stop()
	<-ms[first].done
	if ms[first].e.Leading() {
		t.Fatal("a stopped elector still leads")
	}
	second := waitOne()
	if second == first {
		t.Fatal("the stopped elector was elected again")
	}

	// Another schema elects its own leader.
	other, _ := testenv.Postgres(t)
	m := start(other)
	deadline := time.Now().Add(10 * time.Second)
	for !m.e.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the elector of another schema never led")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ms[second].e.Leading() {
		t.Fatal("the leader of the first schema lost the lead")
	}
	// Stop every elector before the pools close (a pool waits for the
	// connection a leader holds).
	for _, m := range append(ms, m) {
		m.stop()
		<-m.done
	}
}
