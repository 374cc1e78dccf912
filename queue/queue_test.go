package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/queue"
)

// TestOneMessagePerJob checks that publishing a queued job again adds
// nothing, and that once its message is acked the job can be queued again.
func TestOneMessagePerJob(t *testing.T) {
	q := testenv.Queue(t)
	ctx := testenv.Context(t)
	for range 3 {
		if err := q.Publish(ctx, "t1", "job-a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Publish(ctx, "t1", "job-b"); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Pending(ctx); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	cons, err := q.Consumer(ctx, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		target, id, ok := queue.ParseSubject(m.Subject())
		if !ok || target != "t1" {
			t.Fatalf("subject %q", m.Subject())
		}
		got = append(got, id)
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0] != "job-a" {
		t.Fatalf("fetched %v", got)
	}
	if err := q.Publish(ctx, "t1", "job-a"); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Pending(ctx); n != 2 {
		t.Fatalf("%d messages after re-queueing an acked job, want 2", n)
	}
	// Another target's consumer does not see t1's jobs.
	other, _ := q.Consumer(ctx, "t2", 0)
	b2, _ := other.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
	for m := range b2.Messages() {
		t.Errorf("t2 got %s", m.Subject())
	}
	if err := q.Ping(context.Background()); err != nil {
		t.Errorf("ping: %v", err)
	}
}
