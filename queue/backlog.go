package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog is what waits in the queue for one target, as its consumer
// counts it. A job waiting out a retry's backoff has no message (the
// sweeper publishes it when its wait is over), so it is not counted.
type Backlog struct {
	// Pending are the messages no worker has taken yet.
	Pending uint64
	// InFlight are the messages taken and not yet acknowledged:
	// deliveries under way.
	InFlight int
}

// ErrNoConsumer means the target's consumer does not exist yet (no worker
// has started for it since the stream was made).
var ErrNoConsumer = errors.New("no consumer yet")

// TargetBacklog reads target's consumer counters, which JetStream keeps
// up to date: one request, nothing is scanned.
func (q *Queue) TargetBacklog(ctx context.Context, target string) (Backlog, error) {
	c, err := q.js.Consumer(ctx, q.StreamName(), ConsumerName(target))
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return Backlog{}, fmt.Errorf("backlog of target %s: %w", target, ErrNoConsumer)
	}
	if err != nil {
		return Backlog{}, fmt.Errorf("backlog of target %s: %w", target, err)
	}
	info := c.CachedInfo()
	return Backlog{Pending: info.NumPending, InFlight: info.NumAckPending}, nil
}
