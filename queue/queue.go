// Package queue dispatches jobs to workers through NATS JetStream.
//
// Postgres holds the truth about every job; the queue only says "this job
// may be runnable now". Each job has its own subject,
// ferry.<installation>.jobs.<target>.<job id>, in a work-queue stream of its
// installation (FERRY_JOBS_<installation>) that keeps at most one message
// per subject and refuses a second: publishing a job that is already
// queued is a no-op, so the re-publisher that repairs lost messages can
// never flood a worker with duplicates. Each target has its own durable
// consumer, so a slow target cannot hold back the others, and its
// MaxAckPending caps the target's deliveries in flight across all workers.
//
// The installation (internal/installation: an id kept in Postgres) names
// the stream, its subjects and so its consumers: two installations sharing
// one NATS server never see each other's jobs. The stream's metadata names
// its installation, and a queue refuses a stream another one owns. Without
// an installation (SetInstallation not called: tests and tools) the queue
// uses the stream of ferry before installations, FERRY_JOBS.
//
// The stream also holds one mark message, on a subject no consumer reads
// (ferry.<installation>.mark), published when the stream is made: a stream
// whose messages were dropped in place (purged) has lost its mark, which
// costs one request to see (Heal).
package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream settings.
const (
	// LegacyStreamName is the stream of ferry before installations, and of
	// a queue with none set.
	LegacyStreamName = "FERRY_JOBS"
	legacyPrefix     = "ferry.jobs."
	// MetaInstallation is the key of the stream's metadata that names the
	// installation owning it.
	MetaInstallation = "ferry_installation"
	// AckWaitDefault is how long a delivered message stays unacked before
	// JetStream redelivers it; workers signal progress well within it.
	AckWaitDefault = 30 * time.Second
)

// Queue is a connection to the jobs stream.
type Queue struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	ackWait  time.Duration
	replicas int
	names
}

// names are the stream, subjects and owner of one installation's jobs.
type names struct {
	install string // "" without an installation
	stream  string
	prefix  string // of the jobs' subjects, with the final dot
	mark    string // the mark's subject
}

func namesOf(install string) names {
	if install == "" {
		return names{stream: LegacyStreamName, prefix: legacyPrefix, mark: "ferry.jobs.mark"}
	}
	return names{install: install, stream: LegacyStreamName + "_" + install,
		prefix: "ferry." + install + ".jobs.", mark: "ferry." + install + ".mark"}
}

// Connect connects to NATS at url, a server or a comma-separated list of
// the servers of a cluster (the client fails over between them and learns
// the others from the cluster). It returns even while NATS is down (the
// connection keeps retrying), so the API can accept uploads meanwhile; call
// EnsureStream before relying on the stream.
func Connect(url, name string) (*Queue, error) {
	nc, err := nats.Connect(normalizeServers(url),
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishWindow),
		jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Queue{nc: nc, js: js, ackWait: AckWaitDefault, replicas: 1, names: namesOf("")}, nil
}

// StreamName returns the name of the jobs stream.
func (q *Queue) StreamName() string { return q.stream }

// normalizeServers trims the spaces of a comma-separated server list.
func normalizeServers(url string) string {
	var out []string
	for s := range strings.SplitSeq(url, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// SetReplicas sets the replicas of the jobs stream that EnsureStream
// creates, or changes an existing stream to (1 to 5; 3 on a three-node
// cluster). Consumers follow the stream.
func (q *Queue) SetReplicas(n int) { q.replicas = max(n, 1) }

// SetAckWait changes the ack wait of consumers created afterwards (tests
// shorten it).
func (q *Queue) SetAckWait(d time.Duration) { q.ackWait = d }

// AckWait returns the consumers' ack wait.
func (q *Queue) AckWait() time.Duration { return q.ackWait }

// EnsureStream creates the jobs stream, or updates it when its settings
// (its replicas) changed, and puts the mark in it if it has none. It
// refuses, with a *ForeignStreamError, a stream another installation owns.
func (q *Queue) EnsureStream(ctx context.Context) error {
	if err := q.checkOwner(ctx); err != nil {
		return err
	}
	cfg := jetstream.StreamConfig{
		Replicas:             q.replicas,
		Name:                 q.stream,
		Description:          "ferry jobs ready for delivery, one message per job",
		Subjects:             []string{q.prefix + ">"},
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              jetstream.FileStorage,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           0,
	}
	if q.install != "" {
		cfg.Description = "ferry jobs of installation " + q.install + " ready for delivery, one message per job"
		cfg.Subjects = []string{"ferry." + q.install + ".>"}
		cfg.Metadata = map[string]string{MetaInstallation: q.install}
	}
	if _, err := q.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("ensure stream %s: %w", q.stream, err)
	}
	// Bounded, and not an error: a stream whose replicas are moving may
	// leave the publish unanswered, and a stream left without its mark is
	// marked by the sweeper (which republishes the waiting jobs, as for a
	// purge: harmless).
	mctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	_, _ = q.Mark(mctx)
	return nil
}

// markTimeout bounds the mark's publish by EnsureStream.
const markTimeout = 5 * time.Second

// Mark puts the mark in the stream, and returns its sequence; 0 when the
// stream had it already.
func (q *Queue) Mark(ctx context.Context) (uint64, error) {
	ack, err := q.js.Publish(ctx, q.mark, nil)
	if err != nil && isAlreadyQueued(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mark stream %s: %w", q.stream, err)
	}
	return ack.Sequence, nil
}

// DeleteStream deletes the jobs stream and every message in it. Only tests
// and the operator's recovery drills call it: Heal, the workers and the
// sweeper rebuild it and republish its jobs from Postgres.
func (q *Queue) DeleteStream(ctx context.Context) error {
	if err := q.js.DeleteStream(ctx, q.stream); err != nil {
		return fmt.Errorf("delete stream %s: %w", q.stream, err)
	}
	return nil
}

// PurgeStream drops every message of the jobs stream and keeps the stream,
// as an operator's purge does. Only tests and recovery drills call it: the
// sweeper finds the mark gone and republishes the jobs from Postgres.
func (q *Queue) PurgeStream(ctx context.Context) error {
	st, err := q.js.Stream(ctx, q.stream)
	if err == nil {
		err = st.Purge(ctx)
	}
	if err != nil {
		return fmt.Errorf("purge stream %s: %w", q.stream, err)
	}
	return nil
}

// Subject returns the subject of a job.
func (q *Queue) Subject(target, jobID string) string { return q.prefix + target + "." + jobID }

// ParseSubject returns the target and job id of a job's subject, with or
// without an installation: ferry[.<installation>].jobs.<target>.<job id>.
func ParseSubject(subject string) (target, jobID string, ok bool) {
	t := strings.Split(subject, ".")
	switch {
	case len(t) == 5 && t[0] == "ferry" && t[1] != "" && t[2] == "jobs":
		target, jobID = t[3], t[4]
	case len(t) == 4 && t[0] == "ferry" && t[1] == "jobs":
		target, jobID = t[2], t[3]
	}
	return target, jobID, target != "" && jobID != ""
}

// Publish queues a job. Publishing a job whose message is still in the
// stream succeeds without adding a second one.
func (q *Queue) Publish(ctx context.Context, target, jobID string) error {
	_, err := q.js.Publish(ctx, q.Subject(target, jobID), nil)
	if err != nil && isAlreadyQueued(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("publish job %s: %w", jobID, err)
	}
	return nil
}

// publishWindow is how many asynchronous publishes may await their ack.
const publishWindow = 1024

// Msg names the message of one job.
type Msg struct {
	Target string
	JobID  string
	// TraceParent, when set, is the W3C traceparent of the job's trace:
	// the message carries it in its headers (trace.go).
	TraceParent string
}

// PublishAll queues many jobs at once: the publishes are asynchronous,
// up to publishWindow in flight, so a thousand jobs cost about one round
// trip rather than a thousand. It returns, in the order of msgs, nil for
// each job now in the stream (including one whose message was already
// there) and the error of each that is not. Once a publish cannot even be
// sent (the connection is down), the rest fail with the same error at once.
func (q *Queue) PublishAll(ctx context.Context, msgs []Msg) []error {
	errs := make([]error, len(msgs))
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		if ctx.Err() != nil || !q.nc.IsConnected() {
			err := ctx.Err()
			if err == nil {
				err = fmt.Errorf("nats: %s", q.nc.Status())
			}
			for j := i; j < len(msgs); j++ {
				errs[j] = fmt.Errorf("publish job %s: %w", msgs[j].JobID, err)
			}
			break
		}
		f, err := q.js.PublishMsgAsync(q.message(m), jetstream.WithStallWait(5*time.Second))
		if err != nil {
			errs[i] = fmt.Errorf("publish job %s: %w", m.JobID, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if !isAlreadyQueued(err) {
				errs[i] = fmt.Errorf("publish job %s: %w", msgs[i].JobID, err)
			}
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publish job %s: %w", msgs[i].JobID, ctx.Err())
		}
	}
	return errs
}

// isAlreadyQueued reports whether the stream refused a message because the
// job already has one (MaxMsgsPerSubject with DiscardNewPerSubject).
func isAlreadyQueued(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages per subject") {
		return true
	}
	return strings.Contains(err.Error(), "maximum messages per subject")
}

// ConsumerName returns the durable consumer of a target (in the stream of
// the queue's installation, so its name need not carry it).
func ConsumerName(target string) string { return "deliver-" + target }

// Consumer returns the durable consumer of target's jobs, creating or
// updating it. maxInFlight caps the messages delivered and not yet acked
// across every worker (0: JetStream's default).
func (q *Queue) Consumer(ctx context.Context, target string, maxInFlight int) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName(target),
		Description:   "deliveries to target " + target,
		FilterSubject: q.prefix + target + ".*",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.ackWait,
		// Attempts are counted in Postgres, not here.
		MaxDeliver:    -1,
		MaxAckPending: maxInFlight,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Replicas 0: as many as the stream, which the server keeps true
		// when the stream's replicas change.
		Replicas: 0,
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 1000
	}
	c, err := q.js.CreateOrUpdateConsumer(ctx, q.stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// NATS lost its store, or someone deleted the stream: rebuild it.
		// The sweeper republishes the jobs whose messages went with it.
		if err = q.EnsureStream(ctx); err == nil {
			c, err = q.js.CreateOrUpdateConsumer(ctx, q.stream, cfg)
		}
	} else if err != nil && q.replaceable(ctx, cfg.Durable) {
		// Made by hand with settings that cannot be updated (another
		// deliver policy): start it again from the stream's first message.
		if err = q.js.DeleteConsumer(ctx, q.stream, cfg.Durable); err == nil {
			c, err = q.js.CreateOrUpdateConsumer(ctx, q.stream, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer for target %s: %w", target, err)
	}
	return c, nil
}

// Connected reports whether the connection to NATS is up right now.
func (q *Queue) Connected() bool { return q.nc.IsConnected() }

// ErrStreamMissing means JetStream answers but the jobs stream is gone
// (NATS restarted without its store, or the stream was deleted) and has not
// been rebuilt yet.
var ErrStreamMissing = errors.New("jobs stream missing (being rebuilt, its jobs republished from Postgres)")

// Ping checks that JetStream answers and holds the jobs stream, this
// installation's.
func (q *Queue) Ping(ctx context.Context) error {
	if !q.nc.IsConnected() {
		return fmt.Errorf("nats: %s", q.nc.Status())
	}
	st, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return ErrStreamMissing
		}
		return fmt.Errorf("jetstream: %w", err)
	}
	return q.owned(st.CachedInfo())
}

// StreamState is what the sweeper needs to know of the jobs stream.
type StreamState struct {
	// Created identifies the stream: a stream rebuilt after a loss has a
	// new creation time, and every message published before it is gone.
	Created time.Time
	// Recreated reports that Heal had to create the stream.
	Recreated bool
	// Msgs is how many job messages the stream holds (the mark aside).
	Msgs uint64
	// Mark is the sequence of the stream's mark, 0 if the stream lost it
	// (purged: every message published before now may be gone); MarkedAt
	// is when it was published. A new mark means that some process found
	// the stream purged and marked it again.
	Mark     uint64
	MarkedAt time.Time
}

// Heal returns the state of the jobs stream, creating it first if it is
// missing. Two JetStream requests when the stream is there.
func (q *Queue) Heal(ctx context.Context) (StreamState, error) {
	if !q.nc.IsConnected() {
		return StreamState{}, fmt.Errorf("nats: %s", q.nc.Status())
	}
	recreated := false
	st, err := q.js.Stream(ctx, q.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := q.EnsureStream(ctx); err != nil {
			return StreamState{}, err
		}
		recreated = true
		st, err = q.js.Stream(ctx, q.stream)
	}
	if err != nil {
		return StreamState{}, fmt.Errorf("stream %s: %w", q.stream, err)
	}
	info := st.CachedInfo()
	if err := q.owned(info); err != nil {
		return StreamState{}, err
	}
	state := StreamState{Created: info.Created, Recreated: recreated, Msgs: info.State.Msgs}
	m, err := st.GetLastMsgForSubject(ctx, q.mark)
	switch {
	case err == nil:
		state.Mark, state.MarkedAt = m.Sequence, m.Time
		state.Msgs = max(state.Msgs, 1) - 1
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return StreamState{}, fmt.Errorf("stream %s: mark: %w", q.stream, err)
	}
	return state, nil
}

// Pending returns how many job messages wait in the stream (the mark
// aside).
func (q *Queue) Pending(ctx context.Context) (uint64, error) {
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return 0, err
	}
	n := s.CachedInfo().State.Msgs
	if _, err := s.GetLastMsgForSubject(ctx, q.mark); err == nil && n > 0 {
		n--
	} else if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, err
	}
	return n, nil
}

// Close drains the connection: pending acks and publishes are flushed.
func (q *Queue) Close() {
	if q.nc.IsClosed() {
		return
	}
	done := make(chan struct{})
	q.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := q.nc.Drain(); err != nil {
		q.nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		q.nc.Close()
	}
}
