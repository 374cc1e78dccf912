// Package sweeper keeps the queue true to Postgres. Every worker process
// runs one; what they publish twice is harmless (one message per job).
//
// Its repair costs what is broken, not what is waiting: it trusts the
// stream for every job it holds, and acts on what the stream's state says
// is missing. Each tick it
//   - recovers jobs whose worker died mid-delivery (expired lease) and
//     publishes them again;
//   - publishes retries whose wait is over and uploads the API recorded but
//     could not publish (NATS was down): jobs with no message by their row;
//   - checks the jobs stream (two JetStream requests): if it is missing it
//     is created again, and when the stream is not the one the waiting jobs
//     were published to (NATS lost its store, the stream was deleted), or
//     it lost its mark (its messages were purged in place), every job
//     published before that is published again, in batches;
//   - every ConsumerCheckEvery, checks the workers' consumers and deletes
//     any that would skip waiting messages (made again by hand with another
//     deliver policy, or reset): the workers create them again.
//
// A healthy backlog of a million jobs costs one stream check a tick and no
// job-row write. Less often it aborts multipart uploads abandoned by a
// crashed API process and removes stored files that belong to no job. That
// storage pass (bucket scans and retention) costs the same whoever runs it,
// so with Config.Leader set only the elected process does it.
package sweeper

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
)

// Defaults of Config.
const (
	IntervalDefault     = time.Second
	GraceDefault        = 5 * time.Second
	AbandonedUploadsAge = time.Hour
)

// clockMargin covers the difference between the NATS server's clock (the
// stream's creation time) and Postgres's (enqueued_at): jobs published up
// to this long after a stream was created are published again with those
// before, harmlessly.
const clockMargin = 10 * time.Second

// repairBudget bounds the republishing one tick does after a lost stream;
// the next tick carries on where it stopped.
const repairBudget = 20 * time.Second

// JobStore is what the sweeper needs of the job store.
type JobStore interface {
	RecoverExpired(ctx context.Context, limit int) ([]jobs.Ref, error)
	Unpublished(ctx context.Context, grace time.Duration, limit int) ([]jobs.Ref, error)
	PublishedBefore(ctx context.Context, before time.Time, afterID string, limit int) ([]jobs.Ref, error)
	TakeDeliveredObjects(ctx context.Context, retention time.Duration, limit int) ([]string, error)
	ExistingIDs(ctx context.Context, ids []string) (map[string]bool, error)
	Uploading(ctx context.Context, keys []string, alive time.Duration) (map[string]bool, error)
	DeadUploads(ctx context.Context, alive time.Duration, limit int) ([]string, error)
	EndUpload(ctx context.Context, keys ...string) error
}

// Stream is the jobs stream as the sweeper checks it; *queue.Queue is one.
type Stream interface {
	// Heal returns the stream's state, creating it first if missing.
	Heal(ctx context.Context) (queue.StreamState, error)
	// Mark puts the mark in the stream and returns its sequence (0 when
	// the stream had one already).
	Mark(ctx context.Context) (uint64, error)
}

// ConsumerChecker deletes the consumers that would skip waiting messages
// and returns their names with why; *queue.ConsumerCheck is one.
type ConsumerChecker interface {
	Run(ctx context.Context) (map[string]string, error)
}

// Enqueuer publishes jobs and marks them enqueued; *enqueue.Enqueuer is the
// one path every publisher of jobs shares.
type Enqueuer interface {
	Enqueue(ctx context.Context, refs []jobs.Ref) int
}

// ObjectCleaner removes stored files that are no longer needed.
type ObjectCleaner interface {
	AbortIncomplete(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
	AbortUploadsOf(ctx context.Context, keys []string, olderThan time.Duration) (int, error)
	Remove(ctx context.Context, key string) error
	OldKeys(ctx context.Context, prefix, after string, olderThan time.Duration, limit int) ([]string, string, error)
}

// Config tunes a Sweeper.
type Config struct {
	// Interval between ticks.
	Interval time.Duration
	// Grace is how long a new job may wait for the API's own publish
	// before the sweeper publishes it.
	Grace time.Duration
	// Retention is how long a delivered file stays in storage; zero keeps
	// it forever. Job rows and attempts are never removed.
	Retention time.Duration
	// AbandonedAfter is the age at which an incomplete multipart upload, or
	// a stored file that belongs to no job, is removed
	// (AbandonedUploadsAge if zero).
	AbandonedAfter time.Duration
	// Leader, when set, says whether this process is the one elected for
	// the once-per-installation storage pass; nil: always.
	Leader Leader
	// ConsumerCheckEvery is how often the consumers are checked
	// (ConsumerCheckEvery if zero).
	ConsumerCheckEvery time.Duration
	// RepublishAtStart makes the first check publish every waiting job
	// again, not only those published before the stream was made: set
	// while the stream of a ferry before installations exists, whose
	// processes (during a rolling upgrade) may have published jobs there
	// after this installation's own stream was made.
	RepublishAtStart bool
}

// Leader says whether this process does the once-per-installation work.
type Leader interface {
	Leading() bool
}

// Deps are the sweeper's collaborators.
type Deps struct {
	Jobs    JobStore
	Enqueue Enqueuer
	// Stream may be nil: no stream check then (tests of other duties).
	Stream Stream
	// Consumers may be nil: no consumer check then.
	Consumers ConsumerChecker
	// Objects may be nil: no storage pass then.
	Objects ObjectCleaner
	Log     *slog.Logger
}

// Sweeper repairs the queue from Postgres.
type Sweeper struct {
	cfg     Config
	jobs    JobStore
	enqueue Enqueuer
	stream  Stream
	objects ObjectCleaner
	log     *slog.Logger

	orphanCursor string // where the orphan scan resumes
	// streamCreated and markSeq identify the stream and its mark last seen
	// (zero before the first check; markKnown false while the mark's
	// sequence is not known); repair is the republishing pass after a lost
	// stream or lost messages, if one is under way.
	streamCreated time.Time
	markSeq       uint64
	markKnown     bool
	repair        *repair
	streamDown    bool // the last check failed (logged once)
	consumers     ConsumerChecker
	lastConsumers time.Time // of the last consumer check

	mu     sync.Mutex
	status repairStatus // for Describe
}

// New returns a sweeper.
func New(cfg Config, d Deps) *Sweeper {
	if cfg.Interval == 0 {
		cfg.Interval = IntervalDefault
	}
	if cfg.Grace == 0 {
		cfg.Grace = GraceDefault
	}
	if cfg.AbandonedAfter == 0 {
		cfg.AbandonedAfter = AbandonedUploadsAge
	}
	if cfg.ConsumerCheckEvery == 0 {
		cfg.ConsumerCheckEvery = ConsumerCheckEvery
	}
	return &Sweeper{cfg: cfg, jobs: d.Jobs, enqueue: d.Enqueue, stream: d.Stream, objects: d.Objects, log: d.Log,
		consumers: d.Consumers}
}

// Run sweeps every interval until ctx is canceled.
func (s *Sweeper) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	lastClean := time.Time{}
	for {
		s.Sweep(ctx)
		if s.objects != nil && time.Since(lastClean) > time.Minute && (s.cfg.Leader == nil || s.cfg.Leader.Leading()) {
			lastClean = time.Now()
			s.clean(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Clean does the storage pass that Run does once a minute: abandoned
// multipart uploads, files of no job, delivered files past retention.
func (s *Sweeper) Clean(ctx context.Context) { s.clean(ctx) }

// Sweep does one pass and returns how many jobs it published.
func (s *Sweeper) Sweep(ctx context.Context) int {
	published := 0
	recovered, err := s.jobs.RecoverExpired(ctx, 500)
	if err != nil {
		s.log.Warn("recovering expired leases", "err", err)
	} else if len(recovered) > 0 {
		s.log.Warn("recovered jobs whose worker stopped responding", "count", len(recovered))
	}
	published += s.publish(ctx, "recover_lease", recovered)
	for range 10 { // bounded: at most 10,000 per tick
		due, err := s.jobs.Unpublished(ctx, s.cfg.Grace, 1000)
		if err != nil {
			s.log.Warn("finding unpublished jobs", "err", err)
			break
		}
		n := s.publish(ctx, "publish_due", due)
		published += n
		if len(due) < 1000 || n < len(due) {
			break
		}
	}
	published += s.checkStream(ctx)
	s.checkConsumers(ctx)
	return published
}

// clean aborts abandoned multipart uploads and removes delivered files past
// their retention.
func (s *Sweeper) clean(ctx context.Context) {
	s.cleanDeadUploads(ctx)
	s.expireSessions(ctx)
	// S3 proper lists incomplete uploads by prefix too, which also finds
	// those begun before upload markers existed; MinIO lists none that way.
	if n, err := s.objects.AbortIncomplete(ctx, "objects/", s.cfg.AbandonedAfter); err != nil {
		s.log.Warn("cleaning abandoned uploads", "err", err)
	} else if n > 0 {
		s.log.Info("aborted abandoned multipart uploads", "count", n)
	}
	s.removeOrphans(ctx)
	if s.cfg.Retention <= 0 {
		return
	}
	keys, err := s.jobs.TakeDeliveredObjects(ctx, s.cfg.Retention, 1000)
	if err != nil {
		s.log.Warn("finding delivered files past retention", "err", err)
		return
	}
	for _, k := range keys {
		if err := s.objects.Remove(ctx, k); err != nil {
			s.log.Warn("removing delivered file", "key", k, "err", err)
		}
	}
	if len(keys) > 0 {
		s.log.Info("removed delivered files past retention", "count", len(keys), "retention", s.cfg.Retention)
	}
}

// cleanDeadUploads aborts the multipart uploads, and removes the files, of
// uploads whose marker stopped being renewed (their request died with its
// API process). The markers name the keys, which is how MinIO lists
// incomplete uploads.
func (s *Sweeper) cleanDeadUploads(ctx context.Context) {
	keys, err := s.jobs.DeadUploads(ctx, s.cfg.AbandonedAfter, 1000)
	if err != nil || len(keys) == 0 {
		if err != nil {
			s.log.Warn("finding abandoned uploads", "err", err)
		}
		return
	}
	n, err := s.objects.AbortUploadsOf(ctx, keys, 0)
	if err != nil {
		s.log.Warn("aborting abandoned uploads", "err", err)
		return
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = strings.TrimPrefix(k, "objects/")
	}
	known, err := s.jobs.ExistingIDs(ctx, ids)
	if err != nil {
		s.log.Warn("finding abandoned uploads", "err", err)
		return
	}
	for i, k := range keys {
		if known[ids[i]] {
			continue // recorded after all (a commit whose answer was lost)
		}
		if err := s.objects.Remove(ctx, k); err != nil {
			s.log.Warn("removing the file of an abandoned upload", "key", k, "err", err)
			return
		}
	}
	if err := s.jobs.EndUpload(ctx, keys...); err != nil {
		s.log.Warn("removing the markers of abandoned uploads", "err", err)
		return
	}
	s.log.Info("cleaned up uploads whose request died", "count", len(keys), "multipart_aborted", n)
}

// removeOrphans removes stored files that belong to no job: an API process
// that died between storing the bytes and recording the job leaves one. Only
// objects older than Config.AbandonedAfter and not marked as an upload in
// progress are considered, so an upload being received or recorded right
// now is never touched; each pass examines a bounded slice of
// the bucket and the next one carries on from there.
func (s *Sweeper) removeOrphans(ctx context.Context) {
	keys, next, err := s.objects.OldKeys(ctx, "objects/", s.orphanCursor, s.cfg.AbandonedAfter, 5000)
	if err != nil {
		s.log.Warn("scanning for orphaned files", "err", err)
		return
	}
	s.orphanCursor = next
	removed := 0
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 500)]
		keys = keys[len(chunk):]
		ids := make([]string, len(chunk))
		for i, k := range chunk {
			ids[i] = strings.TrimPrefix(k, "objects/")
		}
		known, err := s.jobs.ExistingIDs(ctx, ids)
		if err != nil {
			s.log.Warn("scanning for orphaned files", "err", err)
			return
		}
		// An object can be older than AbandonedAfter and still be received
		// (a long upload: S3 dates a multipart object by its start) or about
		// to be recorded: its upload marker, renewed while the bytes flow,
		// says so. Only files of requests that died are removed.
		uploading, err := s.jobs.Uploading(ctx, chunk, s.cfg.AbandonedAfter)
		if err != nil {
			s.log.Warn("scanning for orphaned files", "err", err)
			return
		}
		for i, k := range chunk {
			if known[ids[i]] || uploading[k] {
				continue
			}
			if err := s.objects.Remove(ctx, k); err != nil {
				s.log.Warn("removing orphaned file", "key", k, "err", err)
				continue
			}
			removed++
		}
	}
	if removed > 0 {
		s.log.Info("removed stored files that belong to no job", "count", removed)
	}
}
