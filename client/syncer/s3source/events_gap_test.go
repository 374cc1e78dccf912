package s3source_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// OnListening is called once the subscription is in place; OnGap when
// NATS came back after a restart (notifications may have been lost
// meanwhile), not before.
func TestEventsGap(t *testing.T) {
	t.Parallel()
	s := open(t, config(newBucket(t).name, "in"))
	srv := testenv.NATS(t)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	listening, gaps := make(chan struct{}, 10), make(chan string, 10)
	ctx, cancel := context.WithCancel(testenv.Context(t))
	done := make(chan error, 1)
	go func() {
		done <- s.Events(ctx, srv.URL(), "minio.events", func([]string) {},
			s3source.OnListening(func() { listening <- struct{}{} }),
			s3source.OnGap(func(reason string) { gaps <- reason }))
	}()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("OnListening not called")
	}
	select {
	case r := <-gaps:
		t.Fatalf("a gap before any: %s", r)
	default:
	}
	srv.Shutdown()
	port, _ := strconv.Atoi(u.Port())
	again, err := natsserver.StartWithToken(t.TempDir(), "127.0.0.1", port, u.User.Username())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Shutdown()
	select {
	case r := <-gaps:
		t.Logf("gap: %s", r)
	case <-time.After(30 * time.Second):
		t.Fatal("OnGap not called after NATS restarted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(listening) != 0 {
		t.Errorf("OnListening called again on a reconnect")
	}
}
