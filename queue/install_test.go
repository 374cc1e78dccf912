package queue_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/queue"
)

// queueOf connects to srv as installation id ("" for none) and makes its
// stream.
func queueOf(t *testing.T, srv *natsserver.Server, id string) *queue.Queue {
	t.Helper()
	q, err := queue.Connect(srv.URL(), t.Name()+"-"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if id != "" {
		if err := q.SetInstallation(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.EnsureStream(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	return q
}

// drain fetches every message of target's consumer and acks it, returning
// the job ids.
func drain(t *testing.T, q *queue.Queue, target string) []string {
	t.Helper()
	cons, err := q.Consumer(testenv.Context(t), target, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			_, id, ok := queue.ParseSubject(m.Subject())
			if !ok {
				t.Fatalf("subject %q", m.Subject())
			}
			ids = append(ids, id)
			_ = m.Ack()
		}
		if n == 0 {
			slices.Sort(ids)
			return ids
		}
	}
}

// Two installations on one NATS server, each with a target of the same
// name: each consumer gets its own installation's jobs and no other's.
// Before, both used FERRY_JOBS and deliver-<target>, and each took about
// half of the other's messages.
func TestInstallationsDoNotShareJobs(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	ctx := testenv.Context(t)
	a, b := queueOf(t, srv, "inst0a"), queueOf(t, srv, "inst0b")
	if a.StreamName() == b.StreamName() {
		t.Fatalf("both installations use stream %s", a.StreamName())
	}
	var wantA, wantB []string
	for i := range 20 {
		ja, jb := "a"+string(rune('a'+i)), "b"+string(rune('a'+i))
		if err := a.Publish(ctx, "t", ja); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, "t", jb); err != nil {
			t.Fatal(err)
		}
		wantA, wantB = append(wantA, ja), append(wantB, jb)
	}
	if got := drain(t, a, "t"); !slices.Equal(got, wantA) {
		t.Errorf("installation a got %v, want %v", got, wantA)
	}
	if got := drain(t, b, "t"); !slices.Equal(got, wantB) {
		t.Errorf("installation b got %v, want %v", got, wantB)
	}
	for _, q := range []*queue.Queue{a, b} {
		if n, err := q.Pending(ctx); err != nil || n != 0 {
			t.Errorf("%s holds %d job messages (%v) once drained", q.StreamName(), n, err)
		}
	}
	// The legacy stream (no installation) is a third, separate one.
	legacy := queueOf(t, srv, "")
	if err := legacy.Publish(ctx, "t", "old"); err != nil {
		t.Fatal(err)
	}
	if n, found, err := a.LegacyStream(ctx); err != nil || !found || n != 2 { // the job and the mark
		t.Errorf("legacy stream: %d messages, found %v (%v)", n, found, err)
	}
	if got := drain(t, legacy, "t"); !slices.Equal(got, []string{"old"}) {
		t.Errorf("legacy stream gave %v", got)
	}
}

// A stream whose metadata names another installation is refused: by
// EnsureStream (so ferry does not start), by Ping (/readyz) and by Heal.
func TestStreamOfAnotherInstallationRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	ctx := testenv.Context(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// The stream named after installation "mine" but owned by "theirs"
	// (as if two installations chose the same name).
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: queue.LegacyStreamName + "_mine",
		Subjects: []string{"ferry.mine.>"}, Metadata: map[string]string{queue.MetaInstallation: "theirs"}}); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Connect(srv.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.SetInstallation("mine"); err != nil {
		t.Fatal(err)
	}
	var foreign *queue.ForeignStreamError
	if err := q.EnsureStream(ctx); !errors.As(err, &foreign) || foreign.Owner != "theirs" {
		t.Fatalf("EnsureStream on another installation's stream: %v", err)
	}
	if err := q.Ping(ctx); !errors.As(err, &foreign) {
		t.Errorf("Ping: %v", err)
	}
	if _, err := q.Heal(ctx); !errors.As(err, &foreign) {
		t.Errorf("Heal: %v", err)
	}
	st, _ := js.Stream(ctx, queue.LegacyStreamName+"_mine")
	if owner := st.CachedInfo().Config.Metadata[queue.MetaInstallation]; owner != "theirs" {
		t.Errorf("the other installation's stream was changed: owner %q", owner)
	}
	// A stream with no owner yet (made by hand) is adopted.
	other, err := queue.Connect(srv.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_ = other.SetInstallation("adopt")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: queue.LegacyStreamName + "_adopt", Subjects: []string{"ferry.adopt.>"},
		Retention: jetstream.WorkQueuePolicy, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true}); err != nil {
		t.Fatal(err)
	}
	if err := other.EnsureStream(ctx); err != nil {
		t.Fatalf("adopting an unowned stream: %v", err)
	}
	st, _ = js.Stream(ctx, queue.LegacyStreamName+"_adopt")
	if owner := st.CachedInfo().Config.Metadata[queue.MetaInstallation]; owner != "adopt" {
		t.Errorf("adopted stream owner %q", owner)
	}
}

// A purge drops the mark with the jobs: Heal says so in one look, and
// Mark puts it back.
func TestPurgeLosesTheMark(t *testing.T) {
	t.Parallel()
	q := queueOf(t, testenv.NATS(t), "purge1")
	ctx := testenv.Context(t)
	st, err := q.Heal(ctx)
	if err != nil || st.Mark == 0 || st.Msgs != 0 {
		t.Fatalf("new stream: %+v (%v), want a mark and no job", st, err)
	}
	for _, id := range []string{"j1", "j2"} {
		if err := q.Publish(ctx, "t", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.PurgeStream(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := q.Heal(ctx)
	if err != nil || after.Mark != 0 || !after.Created.Equal(st.Created) {
		t.Fatalf("purged stream: %+v (%v), want no mark, same stream", after, err)
	}
	seq, err := q.Mark(ctx)
	if err != nil || seq == 0 {
		t.Fatalf("Mark: %d %v", seq, err)
	}
	if again, _ := q.Mark(ctx); again != 0 {
		t.Errorf("a second Mark added a message (%d)", again)
	}
	if st, _ := q.Heal(ctx); st.Mark != seq {
		t.Errorf("mark %d, want %d", st.Mark, seq)
	}
}

// A consumer reset past waiting messages (nats consumer reset; a work
// queue allows no deliver policy but "all") would never deliver them: the
// check deletes it once it sees it twice, and the workers' Consumer makes
// it again from the first message. A deleted consumer is made again too.
func TestConsumersThatSkipMessages(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	q := queueOf(t, srv, "cons1")
	ctx := testenv.Context(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := q.Consumer(ctx, "t", 0); err != nil {
		t.Fatal(err)
	}
	publish := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if err := q.Publish(ctx, "t", id); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("j1", "j2", "j3")
	if err := js.DeleteConsumer(ctx, q.StreamName(), queue.ConsumerName("t")); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, q, "t"); !slices.Equal(got, []string{"j1", "j2", "j3"}) {
		t.Fatalf("after the consumer was deleted: got %v", got)
	}

	publish("j4", "j5")
	st, _ := js.Stream(ctx, q.StreamName())
	if _, err := st.ResetConsumerToSequence(ctx, queue.ConsumerName("t"), st.CachedInfo().State.LastSeq+1); err != nil {
		t.Fatalf("reset: %v", err)
	}
	check := q.NewConsumerCheck()
	if deleted, err := check.Run(ctx); err != nil || len(deleted) != 0 {
		t.Fatalf("first check of a reset consumer: deleted %v (%v), want it only suspected", deleted, err)
	}
	if deleted, err := check.Run(ctx); err != nil || deleted[queue.ConsumerName("t")] == "" {
		t.Fatalf("second check of a reset consumer: deleted %v (%v)", deleted, err)
	}
	if got := drain(t, q, "t"); !slices.Equal(got, []string{"j4", "j5"}) {
		t.Fatalf("after the reset consumer was deleted: got %v", got)
	}
	if deleted, err := check.Run(ctx); err != nil || len(deleted) != 0 {
		t.Fatalf("check of a healthy consumer: deleted %v (%v)", deleted, err)
	}
}

func TestParseSubject(t *testing.T) {
	for _, c := range []struct {
		subject, target, id string
		ok                  bool
	}{
		{"ferry.jobs.raw.j1", "raw", "j1", true},
		{"ferry.abc123.jobs.raw.j1", "raw", "j1", true},
		{"ferry.abc123.mark", "", "", false},
		{"ferry.jobs.mark", "", "", false},
		{"ferry.abc123.jobs.raw", "", "", false},
		{"other.abc123.jobs.raw.j1", "", "", false},
		{"ferry.abc123.jobz.raw.j1", "", "", false},
		{"ferry..jobs.raw.j1", "", "", false},
	} {
		target, id, ok := queue.ParseSubject(c.subject)
		if target != c.target || id != c.id || ok != c.ok {
			t.Errorf("ParseSubject(%q) = %q %q %v", c.subject, target, id, ok)
		}
	}
}
