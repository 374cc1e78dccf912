package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamHealth is where the jobs stream lives on a NATS cluster: which
// server leads it and which replicas are behind.
type StreamHealth struct {
	// Replicas is the stream's configured replica count.
	Replicas int
	// Clustered is false on a single server (no leader, no replicas).
	Clustered bool
	// Leader names the server that leads the stream; empty while none
	// does (an election is under way, or too few servers are up).
	Leader string
	// Current are the followers that have every message.
	Current []string
	// Behind are the followers that lag or are offline.
	Behind []Replica
}

// Replica is a follower of the stream that is behind.
type Replica struct {
	Name    string
	Lag     uint64 // operations it is behind
	Offline bool
	Seen    time.Duration // since it was last heard from
}

// String describes the health in one line, for /readyz and the log.
func (h StreamHealth) String() string {
	if !h.Clustered {
		return "single server"
	}
	leader := h.Leader
	if leader == "" {
		leader = "none"
	}
	s := fmt.Sprintf("R%d, leader %s", h.Replicas, leader)
	if len(h.Current) > 0 {
		s += ", current " + strings.Join(h.Current, " ")
	}
	for _, r := range h.Behind {
		if r.Offline {
			s += fmt.Sprintf(", %s offline", r.Name)
		} else {
			s += fmt.Sprintf(", %s behind by %d", r.Name, r.Lag)
		}
	}
	return s
}

// StreamHealth reads the stream's cluster state.
func (q *Queue) StreamHealth(ctx context.Context) (StreamHealth, error) {
	s, err := q.js.Stream(ctx, q.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return StreamHealth{}, ErrStreamMissing
	}
	if err != nil {
		return StreamHealth{}, fmt.Errorf("stream %s: %w", q.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return StreamHealth{}, fmt.Errorf("stream %s: %w", q.stream, err)
	}
	h := StreamHealth{Replicas: info.Config.Replicas}
	if c := info.Cluster; c != nil && (c.Name != "" || len(c.Replicas) > 0) {
		h.Clustered, h.Leader = true, c.Leader
		for _, p := range c.Replicas {
			if p.Current && !p.Offline {
				h.Current = append(h.Current, p.Name)
				continue
			}
			h.Behind = append(h.Behind, Replica{Name: p.Name, Lag: p.Lag, Offline: p.Offline, Seen: p.Active})
		}
		slices.Sort(h.Current)
	}
	return h, nil
}

// Describe is the stream's health for /readyz: an error while the stream
// has no leader (nothing can be queued), its description otherwise.
func (q *Queue) Describe(ctx context.Context) (string, error) {
	h, err := q.StreamHealth(ctx)
	if err != nil {
		return "", err
	}
	if h.Clustered && h.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader (%s)", q.stream, h)
	}
	return h.String(), nil
}

// WatchStream logs the stream's leader and the replicas that are behind
// whenever they change, checking every interval until ctx ends.
func (q *Queue) WatchStream(ctx context.Context, log *slog.Logger, every time.Duration) {
	last := ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if q.Connected() {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			h, err := q.StreamHealth(cctx)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				if s := "error: " + err.Error(); s != last {
					log.Warn("jobs stream unavailable", "err", err)
					last = s
				}
			case err == nil && h.String() != last:
				last = h.String()
				attrs := []any{"stream", q.stream, "replicas", h.Replicas, "leader", h.Leader, "current", h.Current}
				if len(h.Behind) > 0 || (h.Clustered && h.Leader == "") {
					log.Warn("jobs stream degraded", append(attrs, "behind", h.String())...)
				} else if h.Clustered {
					log.Info("jobs stream", attrs...)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ConsumerReplicas returns on how many servers target's consumer is
// current: its leader and the followers that have caught up.
func (q *Queue) ConsumerReplicas(ctx context.Context, target string) (int, error) {
	c, err := q.js.Consumer(ctx, q.stream, ConsumerName(target))
	if err != nil {
		return 0, fmt.Errorf("consumer for target %s: %w", target, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer for target %s: %w", target, err)
	}
	if info.Cluster == nil {
		return 1, nil
	}
	n := 0
	if info.Cluster.Leader != "" {
		n++
	}
	for _, p := range info.Cluster.Replicas {
		if p.Current && !p.Offline {
			n++
		}
	}
	return n, nil
}
