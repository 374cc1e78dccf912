package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config's storage probing.
const (
	StorageProbeDefault    = 500 * time.Millisecond
	StorageProbeMaxDefault = 15 * time.Second
	// storageProbeTimeout bounds one probe: a storage that does not
	// answer a bucket check within it is still down.
	storageProbeTimeout = 5 * time.Second
	// storageRetryDelay is when a job whose delivery found storage down
	// may run again; the worker's gate holds it until storage answers.
	storageRetryDelay = time.Second
)

// storageHealth is object storage as this process sees it. Unreachable
// storage is ferry's own state, not a target's or a job's: while it lasts,
// every delivery of this process waits (none is attempted, so none
// counts), and one prober checks the bucket with backoff until it answers.
type storageHealth struct {
	mu     sync.Mutex
	down   bool
	reason string
	since  time.Time
	up     chan struct{} // closed when storage answers again
	wake   chan struct{} // tells the prober storage went down
}

func newStorageHealth() *storageHealth {
	return &storageHealth{wake: make(chan struct{}, 1)}
}

// markDown records that storage did not answer a delivery's read. It
// reports whether storage was up until now.
func (s *storageHealth) markDown(err error, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return false
	}
	s.down, s.reason, s.since, s.up = true, err.Error(), now, make(chan struct{})
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

func (s *storageHealth) markUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.down = false
		close(s.up)
	}
}

// wait returns at once while storage is up, else when it answers again or
// ctx ends.
func (s *storageHealth) wait(ctx context.Context) {
	s.mu.Lock()
	down, up := s.down, s.up
	s.mu.Unlock()
	if !down {
		return
	}
	select {
	case <-up:
	case <-ctx.Done():
	}
}

// err returns why deliveries are paused, nil while storage is up.
func (s *storageHealth) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	return fmt.Errorf("deliveries paused since %s: object storage unreachable: %s",
		s.since.UTC().Format(time.RFC3339), s.reason)
}

// Ping reports whether this worker's deliveries run: an error while they
// are paused because object storage does not answer. /readyz shows it.
func (w *Worker) Ping(context.Context) error { return w.storage.err() }

// storageDown pauses every delivery of this process: storage did not answer
// one's read.
func (w *Worker) storageDown(err error, log *slog.Logger) {
	if w.storage.markDown(err, w.cfg.Now()) {
		storagePauses.Inc()
		log.Warn("object storage unreachable: deliveries paused, probing it", "err", err)
	}
}

// waitForStorage holds a target's deliveries while storage is down.
func (w *Worker) waitForStorage(ctx context.Context, log *slog.Logger) {
	if w.storage.err() == nil {
		return
	}
	log.Debug("deliveries wait for object storage")
	w.storage.wait(ctx)
}

// probeStorage waits for storage to be marked down, then checks the bucket
// with backoff (StorageProbe doubling up to StorageProbeMax) until it
// answers, and resumes the deliveries; until ctx ends.
func (w *Worker) probeStorage(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.storage.wake:
		}
		delay := w.cfg.StorageProbe
		for ctx.Err() == nil {
			sleep(ctx, delay)
			pctx, cancel := context.WithTimeout(ctx, storageProbeTimeout)
			err := w.objects.Ping(pctx)
			cancel()
			if err == nil {
				w.storage.markUp()
				w.log.Info("object storage answers again: deliveries resume")
				break
			}
			delay = min(2*delay, w.cfg.StorageProbeMax)
			w.log.Debug("object storage still unreachable", "err", err, "next_probe_in", delay)
		}
	}
}
