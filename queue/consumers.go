package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerCheck finds consumers of the jobs stream that will never deliver
// some of its messages: made again by hand with a deliver policy other than
// "all" (new, last, from a sequence or a time), or reset past messages
// still waiting. It deletes them; the workers create them again, which
// delivers from the stream's first message. Keep one per process: it
// remembers what it suspects between calls.
type ConsumerCheck struct {
	q *Queue
	// suspects are consumers whose ack floor was past a waiting message
	// at the last check, with that message's sequence: on a cluster the
	// floor may move before the acked message leaves the stream, so a
	// consumer is deleted only when the same message is still there at
	// the next check.
	suspects map[string]uint64
}

// NewConsumerCheck returns a check of q's consumers.
func (q *Queue) NewConsumerCheck() *ConsumerCheck {
	return &ConsumerCheck{q: q, suspects: map[string]uint64{}}
}

// Run checks every consumer of the stream (one request per 256 consumers,
// and one per consumer whose ack floor is past zero), deletes those that
// skip messages, and returns their names with why.
func (c *ConsumerCheck) Run(ctx context.Context) (map[string]string, error) {
	st, err := c.q.js.Stream(ctx, c.q.stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.q.stream, err)
	}
	deleted := map[string]string{}
	suspects := map[string]uint64{}
	list := st.ListConsumers(ctx)
	for info := range list.Info() {
		why, first, err := c.q.skips(ctx, st, info)
		if err != nil {
			return deleted, err
		}
		if first != 0 && c.suspects[info.Name] != first {
			suspects[info.Name] = first
			continue
		}
		if why == "" {
			continue
		}
		if err := st.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return deleted, fmt.Errorf("delete consumer %s: %w", info.Name, err)
		}
		deleted[info.Name] = why
	}
	c.suspects = suspects
	if err := list.Err(); err != nil {
		return deleted, fmt.Errorf("consumers of %s: %w", c.q.stream, err)
	}
	return deleted, nil
}

// skips says why a consumer of the workers' will not deliver every
// message of its subject: a deliver policy other than all, or the first
// message of its subject at or below its ack floor (first is then that
// message's sequence).
func (q *Queue) skips(ctx context.Context, st jetstream.Stream, info *jetstream.ConsumerInfo) (why string, first uint64, err error) {
	if !strings.HasPrefix(info.Name, "deliver-") {
		return "", 0, nil // not a worker's
	}
	if info.Config.DeliverPolicy != jetstream.DeliverAllPolicy {
		return "deliver policy " + policyName(info.Config.DeliverPolicy) + " skips waiting messages", 0, nil
	}
	if info.AckFloor.Stream == 0 || info.Config.FilterSubject == "" {
		return "", 0, nil
	}
	m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(info.Config.FilterSubject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("first message of consumer %s: %w", info.Name, err)
	}
	if m.Sequence > info.AckFloor.Stream {
		return "", 0, nil
	}
	return fmt.Sprintf("reset past waiting messages (ack floor %d, first waiting %d)", info.AckFloor.Stream, m.Sequence), m.Sequence, nil
}

func policyName(p jetstream.DeliverPolicy) string {
	b, err := p.MarshalJSON()
	if err != nil {
		return fmt.Sprint(int(p))
	}
	return strings.Trim(string(b), `"`)
}

// replaceable reports whether the consumer exists with a deliver policy
// other than all, which an update cannot change.
func (q *Queue) replaceable(ctx context.Context, name string) bool {
	c, err := q.js.Consumer(ctx, q.stream, name)
	if err != nil {
		return false
	}
	return c.CachedInfo().Config.DeliverPolicy != jetstream.DeliverAllPolicy
}
