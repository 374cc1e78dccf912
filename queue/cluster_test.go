package queue_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/queue"
)

// freePorts returns n distinct loopback ports that were free a moment ago
// (held together, so that none is handed out twice).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startCluster starts a three-node JetStream cluster on loopback and
// returns its nodes and the comma-separated client URL list. The cluster
// is named after the test: should a port of another test's cluster be
// taken in the moment between freePorts and the start, the two clusters
// refuse each other instead of merging (their servers share names).
func startCluster(t *testing.T) ([]*natsserver.Server, string) {
	t.Helper()
	const n = 3
	ports := freePorts(t, 2*n)
	client, routes := ports[:n], ports[n:]
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	nodes := make([]*natsserver.Server, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var rs []string
			for j := range n {
				if j != i {
					rs = append(rs, fmt.Sprintf("nats://127.0.0.1:%d", routes[j]))
				}
			}
			var err error
			nodes[i], err = natsserver.StartNode(natsserver.NodeOptions{Name: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: client[i],
				ClusterHost: "127.0.0.1", ClusterPort: routes[i], Routes: rs, Dir: t.TempDir(), Cluster: name})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Shutdown()
		}
	})
	var urls []string
	for _, p := range client {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return nodes, strings.Join(urls, ", ")
}

// TestLeaderLoss checks that an R3 stream survives the permanent loss of
// its leader: /readyz's description names the leader, a new one is
// elected, and jobs queued before and after are delivered.
func TestLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node NATS cluster (make test runs it)")
	}
	t.Parallel()
	nodes, urls := startCluster(t)
	ctx := testenv.Context(t)
	q, err := queue.Connect(urls, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.SetReplicas(3)
	waitFor(t, 30*time.Second, q.EnsureStream)
	if err := q.Publish(ctx, "t1", "job-a"); err != nil {
		t.Fatal(err)
	}
	var h queue.StreamHealth
	waitFor(t, 30*time.Second, func(ctx context.Context) error {
		if _, err := q.Consumer(ctx, "t1", 0); err != nil {
			return err
		}
		if h, err = q.StreamHealth(ctx); err != nil {
			return err
		}
		n, err := q.ConsumerReplicas(ctx, "t1")
		if err != nil {
			return fmt.Errorf("not replicated yet: %w", err)
		}
		if n != 3 || len(h.Current) != 2 {
			return fmt.Errorf("not replicated yet: stream %s, consumer on %d", h, n)
		}
		return nil
	})
	if d, err := q.Describe(ctx); err != nil || !strings.Contains(d, "leader "+h.Leader) {
		t.Fatalf("describe: %q, %v", d, err)
	}

	// Kill the leader for good: a new one is elected and jobs flow.
	for _, nd := range nodes {
		if nd.Name() == h.Leader {
			nd.Shutdown()
		}
	}
	waitFor(t, 30*time.Second, func(ctx context.Context) error {
		h2, err := q.StreamHealth(ctx)
		if err != nil {
			return err
		}
		if h2.Leader == "" || h2.Leader == h.Leader || len(h2.Behind) != 1 || !h2.Behind[0].Offline {
			return fmt.Errorf("no new leader: %s", h2)
		}
		return nil
	})
	waitFor(t, 30*time.Second, func(ctx context.Context) error { return q.Publish(ctx, "t1", "job-b") })
	got := map[string]bool{}
	waitFor(t, 30*time.Second, func(ctx context.Context) error {
		cons, err := q.Consumer(ctx, "t1", 0)
		if err != nil {
			return err
		}
		batch, err := cons.Fetch(2, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			_, id, _ := queue.ParseSubject(m.Subject())
			got[id] = true
			_ = m.Ack()
		}
		if !got["job-a"] || !got["job-b"] {
			return fmt.Errorf("fetched %v", got)
		}
		return nil
	})
}

// TestReplicasChange checks that FERRY_QUEUE_REPLICAS is applied to an
// existing stream, and that its consumers follow it.
func TestReplicasChange(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node NATS cluster (make test runs it)")
	}
	t.Parallel()
	_, urls := startCluster(t)
	ctx := testenv.Context(t)
	q, err := queue.Connect(urls, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	waitFor(t, 30*time.Second, q.EnsureStream)
	if err := q.Publish(ctx, "t1", "job-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Consumer(ctx, "t1", 0); err != nil {
		t.Fatal(err)
	}
	if h, err := q.StreamHealth(ctx); err != nil || h.Replicas != 1 || !h.Clustered || h.Leader == "" {
		t.Fatalf("R1 stream: %+v, %v", h, err)
	}
	q.SetReplicas(3)
	if err := q.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	// The server moves the stream to a three-server group within about
	// ten seconds (and its consumers, which have Replicas 0, about ten
	// seconds after: not waited for here).
	waitFor(t, 45*time.Second, func(ctx context.Context) error {
		h, err := q.StreamHealth(ctx)
		if err != nil {
			return err
		}
		if h.Replicas != 3 || h.Leader == "" || len(h.Current)+len(h.Behind) != 2 {
			return fmt.Errorf("not replicated yet: stream %s", h)
		}
		return nil
	})
}

// waitFor calls f, each time with a context of its own, until it
// succeeds or d passes: a cluster that is electing a leader leaves
// requests unanswered.
func waitFor(t *testing.T, d time.Duration, f func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
